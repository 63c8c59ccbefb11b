package main

// Subcommands whose issues have not landed yet. Each moves to its own file when it is built.
func init() {
	register("run", "run the whole pipeline on one machine", notImplemented("run"))
	register("enrich", "parse, join sessions and label outcomes on the stream", notImplemented("enrich"))
	register("sink", "batch-write sessions and events into ClickHouse", notImplemented("sink"))
	register("parse", "parse log lines into JSON events", notImplemented("parse"))
	register("sessions", "join parsed lines into session records offline", notImplemented("sessions"))
	register("gen", "generate a realistic fleet of logs with ground truth", notImplemented("gen"))
	register("migrate", "create or upgrade the ClickHouse schema", notImplemented("migrate"))
	register("bench", "measure the pipeline end to end", notImplemented("bench"))
}
