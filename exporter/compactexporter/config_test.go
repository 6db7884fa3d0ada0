package compactexporter

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	assert.Equal(t, &Config{Output: OutputStdout, Color: ColorAuto}, cfg)
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
