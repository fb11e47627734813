package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// benchBody is a small realistic Messages request.
var benchBody = []byte(`{"model":"claude-haiku-5-5","max_tokens":256,"system":"You are a helpful assistant.","messages":[{"role":"user","content":"Summarise the following paragraph in one sentence: The quick brown fox jumps over the lazy dog. The dog, unimpressed, goes back to sleep while the fox wonders what it proved. [[fake output=24 cache_read=128]]"}]}`)

func benchCalls(b *testing.B, base string, stream bool) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	body := benchBody
	if stream {
		body = bytes.Replace(body, []byte(`"max_tokens":256,`), []byte(`"max_tokens":256,"stream":true,`), 1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/messages", bytes.NewReader(body))
			req.Header.Set("x-api-key", "sk-ant-bench")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer() // the servers' shutdown is not part of a call
}

// BenchmarkGateway compares a call straight to fake-upstream, through a
// bare httputil.ReverseProxy, and through the metering gateway with each
// sync mode. Run with -cpu 1 for one connection, -cpu 2,8 for parallel load.
func BenchmarkGateway(b *testing.B) {
	up := httptest.NewServer(fakeupstream.New(fakeupstream.Options{}))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	bare := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		FlushInterval: -1,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 512},
		ErrorLog:      slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	})
	defer bare.Close()
	for _, stream := range []bool{false, true} {
		name := "json"
		if stream {
			name = "sse"
		}
		b.Run(name+"/direct", func(b *testing.B) { benchCalls(b, up.URL, stream) })
		b.Run(name+"/bare-proxy", func(b *testing.B) { benchCalls(b, bare.URL, stream) })
		for _, sync := range []string{sqlite.SyncNormal, sqlite.SyncFull} {
			b.Run(name+"/tokenmeter-sync-"+sync, func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.Listen, cfg.Data, cfg.Sync = "127.0.0.1:0", b.TempDir(), sync
				cfg.Upstreams = map[string]string{"anthropic": up.URL}
				s := &Serve{Config: cfg, Log: slog.New(slog.DiscardHandler)}
				if err := s.Open(b.Context()); err != nil {
					b.Fatal(err)
				}
				defer s.Close(b.Context())
				benchCalls(b, s.URL()+"/anthropic", stream)
			})
		}
	}
}
