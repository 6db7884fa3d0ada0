package falcoencodingextension

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/internal/event"
)

func TestConfigLoads(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewID(typ).String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	require.NoError(t, sub.Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
}

// The extension, as an exporter finds it among the host's extensions, is a
// plog.Marshaler writing Falco alerts, and only for detections.
func TestExtensionMarshalsFalcoAlerts(t *testing.T) {
	f := NewFactory()
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), f.CreateDefaultConfig())
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	defer ext.Shutdown(context.Background())
	m, ok := ext.(plog.Marshaler)
	require.True(t, ok, "the extension is no plog.Marshaler: exporters cannot use it as an encoding")

	ld := plog.NewLogs()
	recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	exec := recs.AppendEmpty()
	exec.SetEventName(event.NameProcessExec)
	det := recs.AppendEmpty()
	det.SetEventName(event.NameProcessKprobe)
	det.Attributes().PutStr(event.AttrSecurityRuleName, "read-shadow")

	out, err := m.MarshalLogs(ld)
	require.NoError(t, err)
	var alert map[string]any
	require.NoError(t, json.Unmarshal(out, &alert), "%s", out)
	assert.Equal(t, "read-shadow", alert["rule"])
}
