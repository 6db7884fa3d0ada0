package eventstreamexporter

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
)

// DefaultSocket is where the exporter listens unless configured otherwise,
// and where `vigil events` looks first.
const DefaultSocket = "/var/run/vigil/events.sock"

// Config is the configuration of the event_stream exporter.
type Config struct {
	// Socket is the path of the unix socket clients connect to; empty
	// disables it. The socket is created with mode 0600, so only the
	// collector's user (root on a node) can subscribe; a missing directory
	// is created with mode 0700.
	Socket string `mapstructure:"socket"`

	// TCP adds a TLS endpoint on loopback, for clients that cannot reach
	// the socket's file system (kubectl port-forward). Absent by default.
	TCP configoptional.Optional[TCPConfig] `mapstructure:"tcp"`

	// BufferSize bounds, in log records, what waits to be sent to one
	// client. A client that falls further behind misses records (counted
	// and reported to it) rather than slowing the pipeline.
	BufferSize int `mapstructure:"buffer_size"`

	// MaxClients bounds the number of simultaneous subscriptions, so the
	// memory clients can hold is at most MaxClients × BufferSize records.
	MaxClients int `mapstructure:"max_clients"`
}

// TCPConfig is the loopback TLS endpoint.
type TCPConfig struct {
	// Endpoint is host:port on a loopback address.
	Endpoint string `mapstructure:"endpoint"`
	// TLS must name the server's certificate and key and a client CA:
	// on TCP, a client certificate is what the socket's file mode is on
	// the unix socket, the proof that the client may see every event.
	TLS configtls.ServerConfig `mapstructure:"tls"`
}

const (
	// maxSocketPath leaves room, in the 108-byte sun_path with its
	// terminating NUL, for the ".<pid>" suffix of the temporary name the
	// socket is bound to before it is renamed into place.
	maxSocketPath = 108 - 1 - len(".4194304")
	maxBufferSize = 1 << 20
	maxMaxClients = 1024
)

// Validate checks the configuration at load time; each error names the
// key it concerns.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.Socket == "" && !c.TCP.HasValue():
		errs = append(errs, errors.New("socket: must not be empty unless tcp is set, or the exporter serves no one"))
	case c.Socket == "":
	case !filepath.IsAbs(c.Socket):
		errs = append(errs, fmt.Errorf("socket: must be an absolute path, got %q", c.Socket))
	case len(c.Socket) > maxSocketPath:
		errs = append(errs, fmt.Errorf("socket: must be at most %d bytes long to fit a unix socket address, got %d", maxSocketPath, len(c.Socket)))
	}
	if c.TCP.HasValue() {
		errs = append(errs, c.TCP.Get().validate()...)
	}
	if c.BufferSize < 1 || c.BufferSize > maxBufferSize {
		errs = append(errs, fmt.Errorf("buffer_size: must be between 1 and %d records, got %d", maxBufferSize, c.BufferSize))
	}
	if c.MaxClients < 1 || c.MaxClients > maxMaxClients {
		errs = append(errs, fmt.Errorf("max_clients: must be between 1 and %d, got %d", maxMaxClients, c.MaxClients))
	}
	return errors.Join(errs...)
}

func (t *TCPConfig) validate() []error {
	var errs []error
	if err := checkLoopback(t.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("tcp.endpoint: %w", err))
	}
	if t.TLS.CertFile == "" && len(t.TLS.CertPem) == 0 || t.TLS.KeyFile == "" && len(t.TLS.KeyPem) == 0 {
		errs = append(errs, errors.New("tcp.tls: cert_file and key_file are required"))
	}
	if t.TLS.ClientCAFile == "" {
		errs = append(errs, errors.New("tcp.tls.client_ca_file: required: without client certificates any local user could read every event"))
	}
	return errs
}

// checkLoopback accepts host:port where host is a loopback IP or
// "localhost": the stream carries every event of the node and is not meant
// to leave it.
func checkLoopback(endpoint string) error {
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return fmt.Errorf("must be host:port, got %q", endpoint)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("must be a loopback address (127.0.0.1, [::1] or localhost), got %q", endpoint)
	}
	return nil
}
