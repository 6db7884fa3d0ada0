package tetragonencodingextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/internal/tetragonjson"
)

// encoding marshals logs with internal/tetragonjson.
type encoding struct {
	logger *zap.Logger
}

var _ plog.Marshaler = (*encoding)(nil)

func (*encoding) Start(context.Context, component.Host) error { return nil }

func (*encoding) Shutdown(context.Context) error { return nil }

// MarshalLogs writes one Tetragon event a line. Records Tetragon has no
// event for (enforcement.action audits) are left out and logged at debug
// level: a Tetragon consumer would not know them.
func (e *encoding) MarshalLogs(ld plog.Logs) ([]byte, error) {
	out, skipped, err := tetragonjson.Marshal(ld)
	if skipped > 0 {
		e.logger.Debug("records without a Tetragon event left out", zap.Int("records", skipped))
	}
	return out, err
}
