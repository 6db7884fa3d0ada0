package tetragonencodingextension

// Config of the tetragon_encoding extension. It has no setting: the
// format is Tetragon's JSON export, as its consumers read it.
type Config struct{}

// Validate accepts every Config.
func (*Config) Validate() error { return nil }
