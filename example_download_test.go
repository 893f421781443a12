package runway_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

// exampleFileServer stands in for Kie's file storage in these examples.
func exampleFileServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct := "video/mp4"
		if strings.HasSuffix(r.URL.Path, ".jpg") {
			ct = "image/jpeg"
		}
		w.Header().Set("Content-Type", ct)
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader("file "+r.URL.Path))
	}))
}

func ExampleClient_Download() {
	srv := exampleFileServer()
	defer srv.Close()
	c, err := runway.NewClient("your-kie-api-key")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	var buf bytes.Buffer
	n, err := c.Download(context.Background(), srv.URL+"/video.mp4", &buf,
		runway.WithAllowPrivateHosts(), // only because the example's server is on loopback
		runway.WithMaxBytes(500<<20),
		runway.WithAttemptTimeout(2*time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, buf.String())
	// Output: 15 file /video.mp4
}

func ExampleClient_SaveResult() {
	srv := exampleFileServer()
	defer srv.Close()
	c, err := runway.NewClient("your-kie-api-key")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	dir, err := os.MkdirTemp("", "runway-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// In real code res comes from WaitForResult or a callback.
	res := &runway.Result{TaskID: "ee603959-debb-48d1-98c4-a6d1c717eba6", Code: 200,
		VideoURL: srv.URL + "/r/video.mp4", ImageURL: srv.URL + "/r/cover.jpg"}
	saved, err := c.SaveResult(context.Background(), res, dir, runway.WithAllowPrivateHosts(),
		runway.WithDownloadProgress(func(done, total int64) {
			// e.g. update a progress bar; total is -1 while unknown
		}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(filepath.Base(saved.VideoPath), filepath.Base(saved.ImagePath))
	// Output: ee603959-debb-48d1-98c4-a6d1c717eba6.mp4 ee603959-debb-48d1-98c4-a6d1c717eba6.cover.jpg
}

func ExampleNewSaveQueue() {
	c, err := runway.NewClient(os.Getenv("KIE_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	q, err := runway.NewSaveQueue(c, "/var/lib/videos", 4, 256,
		runway.WithOnSaved(func(r *runway.Result, saved runway.SavedFiles, err error) {
			if err != nil {
				log.Printf("saving task %s: %v", r.TaskID, err)
			}
		}))
	if err != nil {
		log.Fatal(err)
	}
	// Hand each callback result to the queue; the handler answers Kie at once:
	//
	//	mux.Handle("/kie/callback", c.CallbackHandler(runway.WithResultFunc(q.Enqueue)))
	//
	// On shutdown, stop the HTTP server first, then drain the queue.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		log.Printf("saves abandoned at shutdown: %v", err)
	}
}
