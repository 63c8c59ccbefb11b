package main

// Subcommands whose issues have not landed yet. Each moves to its own file when it is built.
func init() {
	register("bench", "measure the pipeline end to end", notImplemented("bench"))
}
