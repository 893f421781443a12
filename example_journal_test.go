package runway_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

// A task journaled by a process that then stopped is finished by the next one: Reconcile
// polls it and hands the outcome, with its Meta, to the result func.
func ExampleCallbackHandler_Reconcile() {
	srv := waitExampleServer(`{"taskId":"task-1","state":"success",` +
		`"videoInfo":{"videoId":"v1","videoUrl":"https://file.example/v1.mp4"}}`)
	defer srv.Close()
	dir, err := os.MkdirTemp("", "journal")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// What the previous process left behind: one pending task.
	j, err := runway.NewFileJournal(filepath.Join(dir, "runway.journal"))
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()
	_ = j.Add(context.Background(), runway.JournalEntry{TaskID: "task-1", SubmittedAt: time.Now(),
		Meta: map[string]string{"order": "1001"}})

	c, err := runway.NewClient("your-kie-api-key", runway.WithBaseURL(srv.URL), runway.WithJournal(j))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	h := c.CallbackHandler(runway.WithResultFunc(func(_ context.Context, r *runway.Result) error {
		fmt.Println(r.TaskID, "for order", r.Meta["order"], "via", r.Source, r.VideoURL)
		cancel() // a service keeps Reconcile running
		return nil
	}))
	if err := h.Reconcile(ctx, runway.WithPollInterval(time.Second)); !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
	// Output: task-1 for order 1001 via poll https://file.example/v1.mp4
}
