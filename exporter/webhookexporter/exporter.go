package webhookexporter

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
)

type webhook struct {
	cfg     *Config
	set     exporter.Settings
	client  *http.Client
	encoder plog.Marshaler
}

// start finds the encoding among the host's extensions and builds the
// client.
func (w *webhook) start(ctx context.Context, host component.Host) error {
	ext, ok := host.GetExtensions()[w.cfg.Encoding]
	if !ok {
		return fmt.Errorf("webhook exporter: encoding %s: no such extension (list it under service::extensions)", w.cfg.Encoding)
	}
	enc, ok := ext.(plog.Marshaler)
	if !ok {
		return fmt.Errorf("webhook exporter: encoding %s cannot encode logs", w.cfg.Encoding)
	}
	client, err := w.cfg.ClientConfig.ToClient(ctx, host.GetExtensions(), w.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("webhook exporter: %w", err)
	}
	w.encoder, w.client = enc, client
	return nil
}

func (w *webhook) shutdown(context.Context) error {
	if w.client != nil {
		w.client.CloseIdleConnections()
	}
	return nil
}

// consumeLogs encodes and POSTs one record at a time, so that when a
// request fails, only the records not yet accepted are retried.
func (w *webhook) consumeLogs(ctx context.Context, ld plog.Logs) error {
	for ri, rl := range ld.ResourceLogs().All() {
		for si, sl := range rl.ScopeLogs().All() {
			for li, lr := range sl.LogRecords().All() {
				if err := w.send(ctx, rl, sl, lr); err != nil {
					if consumererror.IsPermanent(err) {
						return err
					}
					return consumererror.NewLogs(err, remaining(ld, ri, si, li))
				}
			}
		}
	}
	return nil
}

// send encodes one record, with its resource and scope, and POSTs each
// document of the encoding (an encoding may write none: a record that is
// no alert).
func (w *webhook) send(ctx context.Context, rl plog.ResourceLogs, sl plog.ScopeLogs, lr plog.LogRecord) error {
	one := plog.NewLogs()
	orl := one.ResourceLogs().AppendEmpty()
	rl.Resource().CopyTo(orl.Resource())
	osl := orl.ScopeLogs().AppendEmpty()
	sl.Scope().CopyTo(osl.Scope())
	lr.CopyTo(osl.LogRecords().AppendEmpty())
	out, err := w.encoder.MarshalLogs(one)
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("webhook exporter: encoding: %w", err))
	}
	for len(out) > 0 {
		doc, rest, _ := bytes.Cut(out, []byte("\n"))
		if len(bytes.TrimSpace(doc)) > 0 {
			if err := w.post(ctx, doc); err != nil {
				return err
			}
		}
		out = rest
	}
	return nil
}

// remaining copies the records of ld from the one at (ri, si, li) on.
func remaining(ld plog.Logs, ri, si, li int) plog.Logs {
	out := plog.NewLogs()
	for i := ri; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		orl := out.ResourceLogs().AppendEmpty()
		rl.Resource().CopyTo(orl.Resource())
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			if i == ri && j < si {
				continue
			}
			sl := rl.ScopeLogs().At(j)
			osl := orl.ScopeLogs().AppendEmpty()
			sl.Scope().CopyTo(osl.Scope())
			for k := 0; k < sl.LogRecords().Len(); k++ {
				if i == ri && j == si && k < li {
					continue
				}
				sl.LogRecords().At(k).CopyTo(osl.LogRecords().AppendEmpty())
			}
		}
	}
	return out
}

func (w *webhook) post(ctx context.Context, doc []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.ClientConfig.Endpoint, bytes.NewReader(doc))
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("webhook exporter: %w", err))
	}
	req.Header.Set("Content-Type", w.cfg.ContentType)
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook exporter: POST %s: %w", w.cfg.ClientConfig.Endpoint, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		delay, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return exporterhelper.NewThrottleRetry(fmt.Errorf("webhook exporter: POST %s: %s", w.cfg.ClientConfig.Endpoint, resp.Status),
			time.Duration(delay)*time.Second)
	case resp.StatusCode/100 == 5:
		return fmt.Errorf("webhook exporter: POST %s: %s: %s", w.cfg.ClientConfig.Endpoint, resp.Status, body)
	default:
		// The server refused the document: sending it again would not
		// change that.
		return consumererror.NewPermanent(fmt.Errorf("webhook exporter: POST %s: %s: %s", w.cfg.ClientConfig.Endpoint, resp.Status, body))
	}
}
