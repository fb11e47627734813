package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// DefaultSinkTimeout bounds one delivery attempt to a webhook or a command.
const DefaultSinkTimeout = 10 * time.Second

// Headers a webhook request carries.
const (
	// HeaderIdempotencyKey carries Message.IdempotencyKey.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256 of the
	// request body under the sink's secret, when it has one.
	HeaderSignature = "X-Tokenmeter-Signature"
)

// A Sink delivers alert messages somewhere. Send returns nil once the
// message is accepted; an error means the delivery is retried later (so a
// sink may see one message more than once: Message.IdempotencyKey tells).
type Sink interface {
	// Name identifies the sink in rules and in the outbox.
	Name() string
	// Send delivers m, whose JSON is payload.
	Send(ctx context.Context, m Message, payload []byte) error
}

// Webhook posts the message's JSON (or, with Slack set, {"text": ...}) to
// URL. A 2xx answer is a delivery; anything else is an error.
type Webhook struct {
	SinkName string
	// URL is where to post. It may hold a secret (Slack's do): it never
	// appears in an error or a log line.
	URL string
	// Slack sends Slack's incoming-webhook body {"text": Message.Text},
	// with &, < and > escaped as Slack's formatting reference asks (they
	// are its control characters: "<!channel>" in a model name would
	// otherwise notify the whole channel, "<url|text>" make a link).
	Slack bool
	// Secret, when set, signs the body (HeaderSignature).
	Secret []byte
	// Timeout bounds an attempt; zero means DefaultSinkTimeout.
	Timeout time.Duration
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
}

// Name implements Sink.
func (w *Webhook) Name() string { return w.SinkName }

// slackEscaper replaces Slack's three control characters by their HTML
// entities (and nothing else: Slack decodes only these).
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// SlackEscape returns s safe as the text of a Slack message: names that
// clients chose (models, projects) cannot mention, link or reformat.
func SlackEscape(s string) string { return slackEscaper.Replace(s) }

// Sign returns the value of HeaderSignature for body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature under secret (for
// receivers written in Go, and tests).
func Verify(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(sig), []byte(Sign(secret, body)))
}

// Send implements Sink.
func (w *Webhook) Send(ctx context.Context, m Message, payload []byte) error {
	body := payload
	if w.Slack {
		var err error
		if body, err = json.Marshal(struct {
			Text string `json:"text"`
		}{SlackEscape(m.Text)}); err != nil {
			return err
		}
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = DefaultSinkTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("invalid webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tokenmeter-alerts/1")
	req.Header.Set(HeaderIdempotencyKey, m.IdempotencyKey)
	if len(w.Secret) > 0 {
		req.Header.Set(HeaderSignature, Sign(w.Secret, body))
	}
	client := w.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return redact(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// redact drops the URL from an HTTP client error (a webhook URL may carry
// a token in its path or query).
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(ue.Err, context.DeadlineExceeded) {
			return errors.New("webhook did not answer in time")
		}
		return fmt.Errorf("webhook request failed: %v", ue.Err)
	}
	return errors.New("webhook request failed")
}

// CommandEnv names the variables a command sink inherits from the
// gateway's environment. Nothing else is passed: the gateway's
// environment holds provider keys, admin keys and the admin token, which
// a pager script has no business seeing. A sink names any more it needs
// (Command.Env, the config's env: list).
var CommandEnv = []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ"}

// InheritEnv returns the NAME=value entries of CommandEnv and extra that
// lookup finds (os.LookupEnv, or a test's), for Command.Env.
func InheritEnv(lookup func(string) (string, bool), extra []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, name := range append(append([]string{}, CommandEnv...), extra...) {
		if seen[name] {
			continue
		}
		seen[name] = true
		if v, ok := lookup(name); ok {
			out = append(out, name+"="+v)
		}
	}
	return out
}

// Command runs Shell (with sh -c) with the message's JSON on its stdin. A
// zero exit status is a delivery. It is stopped (its whole process group)
// after Timeout. Its environment is Env and the message's
// TOKENMETER_ALERT_ID, TOKENMETER_ALERT_EVENT and TOKENMETER_IDEMPOTENCY_KEY,
// never the gateway's whole environment.
type Command struct {
	SinkName string
	Shell    string
	// Timeout bounds a run; zero means DefaultSinkTimeout.
	Timeout time.Duration
	// Env is the NAME=value entries the command inherits (see InheritEnv);
	// nil means InheritEnv(os.LookupEnv, nil): CommandEnv only.
	Env []string
}

// Name implements Sink.
func (c *Command) Name() string { return c.SinkName }

// Send implements Sink.
func (c *Command) Send(ctx context.Context, m Message, payload []byte) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultSinkTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.Shell)
	cmd.Stdin = bytes.NewReader(payload)
	env := c.Env
	if env == nil {
		env = InheritEnv(os.LookupEnv, nil)
	}
	cmd.Env = append(slices.Clip(env), "TOKENMETER_ALERT_ID="+fmt.Sprint(m.Alert.ID), "TOKENMETER_ALERT_EVENT="+string(m.Event),
		"TOKENMETER_IDEMPOTENCY_KEY="+m.IdempotencyKey)
	var stderr limitedBuffer
	stderr.max = 512
	cmd.Stderr, cmd.Stdout = &stderr, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("command did not finish within %s", timeout)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return fmt.Errorf("command failed (%v): %s", err, msg)
		}
		return fmt.Errorf("command failed: %v", err)
	}
	return nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// LogName is the name of the log sink, which every alert goes to.
const LogName = "log"

// Log writes each message to a logger: firing at warn, resolved at info.
type Log struct {
	Logger *slog.Logger
}

// Name implements Sink.
func (l *Log) Name() string { return LogName }

// Send implements Sink.
func (l *Log) Send(ctx context.Context, m Message, _ []byte) error {
	level := slog.LevelWarn
	if m.Event == "resolved" {
		level = slog.LevelInfo
	}
	l.Logger.Log(ctx, level, "alert "+string(m.Event), "alert", m.Alert.ID, "rule", m.Alert.Rule, "kind", m.Alert.Kind,
		"severity", m.Alert.Severity, "subject", m.Alert.Subject, "summary", m.Text)
	return nil
}
