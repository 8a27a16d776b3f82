"""The stream engine: how records come in, how a plan's effects go out, and the one place
that reaches into Faust's and aiokafka's private API."""
