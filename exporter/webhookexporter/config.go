package webhookexporter

import (
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config of the webhook exporter.
type Config struct {
	// ClientConfig is the HTTP client: endpoint (the URL each document is
	// POSTed to), headers, TLS, timeout, auth.
	ClientConfig confighttp.ClientConfig `mapstructure:",squash"`
	// Encoding names the encoding extension (a plog.Marshaler writing one
	// document a line, as falco_encoding does) whose documents are sent,
	// one a request.
	Encoding component.ID `mapstructure:"encoding"`
	// ContentType is the requests' Content-Type.
	ContentType string `mapstructure:"content_type"`

	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
}

// Validate names each missing setting.
func (c *Config) Validate() error {
	var errs []error
	if c.ClientConfig.Endpoint == "" {
		errs = append(errs, errors.New("endpoint: required, the URL documents are POSTed to"))
	}
	if c.Encoding == (component.ID{}) {
		errs = append(errs, errors.New("encoding: required, an encoding extension such as falco_encoding"))
	}
	if c.ContentType == "" {
		errs = append(errs, errors.New("content_type: must not be empty"))
	}
	return errors.Join(errs...)
}
