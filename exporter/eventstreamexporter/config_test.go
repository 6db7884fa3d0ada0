package eventstreamexporter

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	assert.Equal(t, "/var/run/vigil/events.sock", cfg.Socket)
	assert.False(t, cfg.TCP.HasValue(), "no TCP endpoint unless configured")
	assert.Equal(t, 4096, cfg.BufferSize)
	assert.Equal(t, 16, cfg.MaxClients)
	assert.NoError(t, cfg.Validate())
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	withTCP := func(endpoint string, tls configtls.ServerConfig) configoptional.Optional[TCPConfig] {
		return configoptional.Some(TCPConfig{Endpoint: endpoint, TLS: tls})
	}
	serverTLS := func(clientCA string) configtls.ServerConfig {
		s := configtls.NewDefaultServerConfig()
		s.CertFile = "/etc/vigil/tls/server.crt"
		s.KeyFile = "/etc/vigil/tls/server.key"
		s.ClientCAFile = clientCA
		return s
	}
	def := func(mutate func(*Config)) *Config {
		c := createDefaultConfig().(*Config)
		mutate(c)
		return c
	}

	tests := []struct {
		name    string
		want    *Config
		wantErr string
	}{
		{
			name: "",
			want: def(func(*Config) {}),
		},
		{
			name: "custom",
			want: def(func(c *Config) {
				c.Socket = "/run/vigil/stream.sock"
				c.BufferSize = 128
				c.MaxClients = 2
			}),
		},
		{
			name: "tcp",
			want: def(func(c *Config) {
				c.Socket = ""
				c.TCP = withTCP("127.0.0.1:4320", serverTLS("/etc/vigil/tls/clients-ca.crt"))
			}),
		},
		{
			name:    "no_listener",
			want:    def(func(c *Config) { c.Socket = "" }),
			wantErr: "socket: must not be empty unless tcp is set, or the exporter serves no one",
		},
		{
			name:    "relative_socket",
			want:    def(func(c *Config) { c.Socket = "run/events.sock" }),
			wantErr: `socket: must be an absolute path, got "run/events.sock"`,
		},
		{
			name: "long_socket",
			want: def(func(c *Config) {
				c.Socket = "/var/run/vigil/a-directory-name-long-enough-to-push-the-socket-path-past-what-sun-path-holds/events.sock"
			}),
			wantErr: "socket: must be at most 99 bytes long to fit a unix socket address, got 104",
		},
		{
			name: "tcp_not_loopback",
			want: def(func(c *Config) {
				c.TCP = withTCP("0.0.0.0:4320", serverTLS("/etc/vigil/tls/clients-ca.crt"))
			}),
			wantErr: `tcp.endpoint: must be a loopback address (127.0.0.1, [::1] or localhost), got "0.0.0.0:4320"`,
		},
		{
			name: "tcp_without_client_ca",
			want: def(func(c *Config) {
				c.TCP = withTCP("localhost:4320", serverTLS(""))
			}),
			wantErr: "tcp.tls.client_ca_file: required: without client certificates any local user could read every event",
		},
		{
			name: "tcp_without_tls",
			want: def(func(c *Config) {
				c.TCP = withTCP("[::1]:4320", configtls.NewDefaultServerConfig())
			}),
			wantErr: "tcp.tls: cert_file and key_file are required\n" +
				"tcp.tls.client_ca_file: required: without client certificates any local user could read every event",
		},
		{
			name: "bad_sizes",
			want: def(func(c *Config) {
				c.BufferSize = 0
				c.MaxClients = 2000
			}),
			wantErr: "buffer_size: must be between 1 and 1048576 records, got 0\n" +
				"max_clients: must be between 1 and 1024, got 2000",
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
