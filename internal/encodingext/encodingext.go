// Package encodingext is what Vigil's encoding extensions share: a
// Collector extension that is a plog.Marshaler around a function writing
// one document a line. The component packages (tetragon_encoding,
// falco_encoding) keep their config and factory and choose the function.
package encodingext

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
)

// MarshalFunc encodes logs and says how many records it left out (those
// the format has nothing for).
type MarshalFunc func(plog.Logs) (out []byte, skipped int, err error)

// Extension is an encoding extension: exporters that take an `encoding`
// find it among the host's extensions and use it as a plog.Marshaler.
type Extension struct {
	logger  *zap.Logger
	marshal MarshalFunc
	// leftOut says what the skipped records are, for the debug log.
	leftOut string
}

var _ plog.Marshaler = (*Extension)(nil)

// New returns an encoding extension around marshal; leftOut names the
// records marshal skips ("records without a Tetragon event").
func New(logger *zap.Logger, marshal MarshalFunc, leftOut string) *Extension {
	return &Extension{logger: logger, marshal: marshal, leftOut: leftOut}
}

func (*Extension) Start(context.Context, component.Host) error { return nil }

func (*Extension) Shutdown(context.Context) error { return nil }

// MarshalLogs encodes ld. Skipped records are logged at debug level: a
// consumer of the format would not know them.
func (e *Extension) MarshalLogs(ld plog.Logs) ([]byte, error) {
	out, skipped, err := e.marshal(ld)
	if skipped > 0 {
		e.logger.Debug(e.leftOut+" left out", zap.Int("records", skipped))
	}
	return out, err
}
