package falcoencodingextension

// Config of the falco_encoding extension. It has no setting: the format is
// Falco's json_output, as falcosidekick takes it.
type Config struct{}

// Validate accepts every Config.
func (*Config) Validate() error { return nil }
