package falcoencodingextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/internal/falcojson"
)

// encoding marshals logs with internal/falcojson.
type encoding struct {
	logger *zap.Logger
}

var _ plog.Marshaler = (*encoding)(nil)

func (*encoding) Start(context.Context, component.Host) error { return nil }

func (*encoding) Shutdown(context.Context) error { return nil }

// MarshalLogs writes one alert a line for each detection; process exec
// and exit records, which are activity, are left out.
func (e *encoding) MarshalLogs(ld plog.Logs) ([]byte, error) {
	out, skipped, err := falcojson.Marshal(ld)
	if skipped > 0 {
		e.logger.Debug("records that are not detections left out", zap.Int("records", skipped))
	}
	return out, err
}
