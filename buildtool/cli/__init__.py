"""The command line: argument types, the commands, `buildtool ci` verbs; main.main is the console entry point."""
