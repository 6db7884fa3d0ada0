package tetragonencodingextension

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cilium/tetragon/api/v1/tetragon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/encoding/protojson"

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
// plog.Marshaler writing Tetragon's export.
func TestExtensionMarshalsTetragonExport(t *testing.T) {
	f := NewFactory()
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), f.CreateDefaultConfig())
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	defer ext.Shutdown(context.Background())
	m, ok := ext.(plog.Marshaler)
	require.True(t, ok, "the extension is no plog.Marshaler: exporters cannot use it as an encoding")

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(event.AttrHostName, "node-1")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(event.NameProcessExec)
	lr.Attributes().PutStr(event.AttrExecID, "bm9kZToxOjI=")
	lr.Attributes().PutStr(event.AttrProcessExecutablePath, "/bin/true")
	audit := rl.ScopeLogs().At(0).LogRecords().AppendEmpty()
	audit.SetEventName(event.NameEnforcementAction)

	out, err := m.MarshalLogs(ld)
	require.NoError(t, err)
	var ev tetragon.GetEventsResponse
	require.NoError(t, protojson.Unmarshal(out, &ev), "%s", out)
	assert.Equal(t, "/bin/true", ev.GetProcessExec().GetProcess().GetBinary())
	assert.Equal(t, "node-1", ev.GetNodeName())
}
