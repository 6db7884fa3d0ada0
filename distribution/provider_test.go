package distribution

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"

	"github.com/vigilsec/vigil/internal/privfile"
)

func TestProviderServesTheDefaultConfig(t *testing.T) {
	p := NewFactory().Create(confmap.ProviderSettings{})
	assert.Equal(t, "vigil", p.Scheme())

	ret, err := p.Retrieve(context.Background(), DefaultURI, nil)
	require.NoError(t, err)
	conf, err := ret.AsConf()
	require.NoError(t, err)

	assert.True(t, conf.IsSet("receivers::ebpf"), "the default config runs the ebpf receiver")
	assert.Equal(t, []any{"ebpf"}, conf.Get("service::pipelines::logs::receivers"))
	assert.Equal(t, []any{"compact", "file"}, conf.Get("service::pipelines::logs::exporters"))
	assert.Equal(t, []any{"ebpf"}, conf.Get("service::pipelines::metrics::receivers"))
	assert.Equal(t, []any{"prometheus"}, conf.Get("service::pipelines::metrics::exporters"))
	require.NoError(t, p.Shutdown(context.Background()))
}

// Every component a pipeline or the service names must be configured, or
// the collector refuses the config at start; catch that here rather than
// at `make run`.
func TestDefaultConfigDefinesWhatItUses(t *testing.T) {
	ret, err := NewFactory().Create(confmap.ProviderSettings{}).Retrieve(context.Background(), DefaultURI, nil)
	require.NoError(t, err)
	conf, err := ret.AsConf()
	require.NoError(t, err)

	for _, ext := range conf.Get("service::extensions").([]any) {
		assert.True(t, conf.IsSet("extensions::"+ext.(string)), "extension %q is used but not configured", ext)
	}
	pipelines := conf.Get("service::pipelines").(map[string]any)
	require.NotEmpty(t, pipelines)
	for name, pipeline := range pipelines {
		for _, kind := range []string{"receivers", "processors", "exporters"} {
			ids, _ := pipeline.(map[string]any)[kind].([]any)
			for _, id := range ids {
				assert.True(t, conf.IsSet(kind+"::"+id.(string)), "pipeline %s: %s %q is used but not configured", name, kind, id)
			}
		}
	}
}

// The default config must run on a bare machine: each ${...} it holds is an
// environment variable with a default, and each endpoint is on loopback.
func TestDefaultConfigNeedsNoEnvironment(t *testing.T) {
	refs := regexp.MustCompile(`\$\{[^}]*\}`).FindAllString(string(DefaultConfig()), -1)
	require.NotEmpty(t, refs)
	withDefault := regexp.MustCompile(`^\$\{env:VIGIL_[A-Z_]+:-[^}]+\}$`)
	for _, ref := range refs {
		assert.Regexp(t, withDefault, ref)
	}

	// Resolve the way the collector does, with an env provider that knows
	// only the `:-` default syntax of the real one and an empty environment.
	resolver, err := confmap.NewResolver(confmap.ResolverSettings{
		URIs:              []string{DefaultURI},
		ProviderFactories: []confmap.ProviderFactory{NewFactory(), emptyEnvFactory()},
	})
	require.NoError(t, err)
	conf, err := resolver.Resolve(context.Background())
	require.NoError(t, err)
	// Every file it writes is in a directory of Vigil's own, which
	// privfile narrows to root's alone.
	assert.Equal(t, "/var/log/vigil/events.jsonl", conf.Get("exporters::file::path"))
	assert.Equal(t, true, conf.Get("exporters::file::create_directory"))
	assert.Equal(t, "0700", conf.Get("exporters::file::directory_permissions"))
	assert.Equal(t, "/var/run/vigil/events.sock", conf.Get("exporters::event_stream::socket"))
	for _, dir := range []string{"/var/log/vigil", "/var/run/vigil"} {
		assert.Contains(t, privfile.OwnDirs, dir)
	}
	for _, key := range []string{"exporters::prometheus::endpoint", "extensions::health_check::endpoint"} {
		endpoint, _ := conf.Get(key).(string)
		assert.True(t, strings.HasPrefix(endpoint, "127.0.0.1:"), "%s = %q, want a loopback address", key, endpoint)
	}
}

func TestProviderRefusesOtherURIs(t *testing.T) {
	p := NewFactory().Create(confmap.ProviderSettings{})

	_, err := p.Retrieve(context.Background(), "vigil:nope", nil)
	require.ErrorIs(t, err, errUnknownConfig)
	assert.ErrorContains(t, err, "vigil:default", "the error lists what is known")

	_, err = p.Retrieve(context.Background(), "file:/etc/otelcol/config.yaml", nil)
	assert.ErrorContains(t, err, "not supported")
}

func TestDefaultConfigReturnsACopy(t *testing.T) {
	b := DefaultConfig()
	b[0] ^= 0xff
	assert.NotEqual(t, b[0], DefaultConfig()[0])
}

// emptyEnvFactory stands in for envprovider (not a dependency of this
// module) in an environment where no VIGIL_ variable is set.
func emptyEnvFactory() confmap.ProviderFactory {
	return confmap.NewProviderFactory(func(confmap.ProviderSettings) confmap.Provider {
		return envStub{}
	})
}

type envStub struct{}

func (envStub) Retrieve(_ context.Context, uri string, _ confmap.WatcherFunc) (*confmap.Retrieved, error) {
	name, def, _ := strings.Cut(strings.TrimPrefix(uri, "env:"), ":-")
	if strings.HasPrefix(name, "VIGIL_") {
		return confmap.NewRetrievedFromYAML([]byte(def))
	}
	return confmap.NewRetrievedFromYAML([]byte(os.Getenv(name)))
}

func (envStub) Scheme() string { return "env" }

func (envStub) Shutdown(context.Context) error { return nil }
