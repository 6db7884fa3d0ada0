package compactexporter

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// OutputStdout is the Output value that selects the collector's standard
// output. A file literally named "stdout" is reachable as "./stdout".
const OutputStdout = "stdout"

// Color modes.
const (
	ColorAuto   = "auto"
	ColorAlways = "always"
	ColorNever  = "never"
)

// Config is the configuration of the compact exporter.
type Config struct {
	// Output is "stdout" or the path of a file. A file is opened for
	// appending, created with mode 0600 (events can name secrets such as
	// command lines) in a directory created 0700 when missing; a symbolic
	// link at the path, or a file another user owns or can write, is
	// refused (internal/privfile).
	Output string `mapstructure:"output"`

	// Color is auto, always or never. auto colours the output only when
	// it is stdout and stdout is a terminal, so files and log pipelines
	// never receive escape codes.
	Color string `mapstructure:"color"`

	// QueueConfig is exporterhelper's sending_queue, off unless set: with
	// it a slow terminal or disk holds up the queue rather than the
	// pipeline, and the queue's fill is a metric. num_consumers: 1 keeps
	// the lines in the pipeline's order.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
}

// Validate checks the configuration before the collector starts, so a typo
// is reported at load time and names the key it concerns.
func (c *Config) Validate() error {
	var errs []error
	if c.Output == "" {
		errs = append(errs, errors.New(`output: must not be empty; use "stdout" or a file path`))
	}
	switch c.Color {
	case ColorAuto, ColorAlways, ColorNever:
	default:
		errs = append(errs, fmt.Errorf("color: must be one of %s, %s, %s; got %q",
			ColorAuto, ColorAlways, ColorNever, c.Color))
	}
	return errors.Join(errs...)
}
