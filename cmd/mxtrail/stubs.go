package main

// Subcommands whose issues have not landed yet. Each moves to its own file when it is built.
func init() {
	register("run", "run the whole pipeline on one machine", notImplemented("run"))
}
