package compactexporter

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	assert.Equal(t, OutputStdout, cfg.Output)
	assert.Equal(t, ColorAuto, cfg.Color)
	assert.False(t, cfg.QueueConfig.HasValue(), "the queue is off by default")
	assert.NoError(t, cfg.Validate())
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		name    string
		want    *Config
		wantErr string
	}{
		{
			name: "",
			want: &Config{Output: OutputStdout, Color: ColorAuto},
		},
		{
			name: "file",
			want: &Config{Output: "/var/log/vigil/events.log", Color: ColorNever},
		},
		{
			name:    "bad_color",
			want:    &Config{Output: OutputStdout, Color: "blue"},
			wantErr: `color: must be one of auto, always, never; got "blue"`,
		},
		{
			name: "queued",
			want: &Config{Output: OutputStdout, Color: ColorAuto, QueueConfig: queued(1)},
		},
		{
			name:    "empty_output",
			want:    &Config{Output: "", Color: ColorAuto},
			wantErr: `output: must not be empty; use "stdout" or a file path`,
		},
	}
	for _, tt := range tests {
		id := component.NewIDWithName(typ, tt.name)
		t.Run(id.String(), func(t *testing.T) {
			sub, err := cm.Sub(id.String())
			require.NoError(t, err)
			cfg := NewFactory().CreateDefaultConfig()
			require.NoError(t, sub.Unmarshal(cfg))
			if !tt.want.QueueConfig.HasValue() {
				tt.want.QueueConfig = configoptional.Default(exporterhelper.NewDefaultQueueConfig())
			}
			assert.Equal(t, tt.want, cfg)

			err = cfg.(*Config).Validate()
			if tt.wantErr == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, tt.wantErr)
			}
		})
	}
}

// queued is the default sending queue, enabled, with n consumers.
func queued(n int) configoptional.Optional[exporterhelper.QueueBatchConfig] {
	q := exporterhelper.NewDefaultQueueConfig()
	q.NumConsumers = n
	return configoptional.Some(q)
}

// TestBadSendingQueueIsNamed: the Collector validates sending_queue as
// it validates every nested setting, naming the key.
func TestBadSendingQueueIsNamed(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.QueueConfig = queued(0)
	assert.ErrorContains(t, confmap.Validate(cfg), "sending_queue: `num_consumers` must be positive")
}
