package runway_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

// waitExampleServer serves record-detail with the given data object, as Kie would for a task that
// has already finished.
func waitExampleServer(data string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"code":200,"msg":"success","data":%s}`, data)
	}))
}

// Wait for a task: polling starts at once, so a finished task returns immediately. In a
// service, mount c.CallbackHandler() as well; the first of callback and poll wins.
func ExampleClient_WaitForResult() {
	srv := waitExampleServer(`{"taskId":"task-1","state":"success",` +
		`"videoInfo":{"videoId":"v1","videoUrl":"https://file.example/v1.mp4","imageUrl":"https://file.example/v1.png"}}`)
	defer srv.Close()

	c, err := runway.NewClient("my-api-key", runway.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.WaitForResult(context.Background(), "task-1",
		runway.WithPollInterval(30*time.Second),
		runway.WithWaitTimeout(20*time.Minute),
		runway.WithProgress(func(t *runway.Task) { fmt.Println("state:", t.State) }))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Source, res.VideoURL)
	// Output:
	// state: success
	// poll https://file.example/v1.mp4
}

// A task that ran and failed returns its Result together with a classified *TaskError.
func ExampleClient_WaitForResult_taskFailure() {
	srv := waitExampleServer(`{"taskId":"task-2","state":"fail","failCode":400,` +
		`"failMsg":"Your prompt was caught by our AI moderator."}`)
	defer srv.Close()

	c, err := runway.NewClient("my-api-key", runway.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.WaitForResult(context.Background(), "task-2")
	var te *runway.TaskError
	if errors.As(err, &te) {
		fmt.Println("kind:", te.Kind)
		fmt.Println("moderation:", errors.Is(err, runway.ErrModeration))
		fmt.Println("worth resubmitting unchanged:", te.Retryable())
	}
	// Output:
	// kind: moderation
	// moderation: true
	// worth resubmitting unchanged: false
}

// Resume waits after a restart from task ids stored when they were submitted. A wait that
// gives up says why; the task keeps running at Kie and can be waited for again.
func ExampleClient_WaitForResult_resume() {
	c, err := runway.NewClient("my-api-key")
	if err != nil {
		log.Fatal(err)
	}
	stored := []struct {
		ID    string
		Aleph bool
	}{{"ee603959-debb-48d1-98c4-a6d1c717eba6", false}, {"a1b2c3d4", true}}
	for _, task := range stored {
		opts := []runway.WaitOption{runway.WithWaitTimeout(10 * time.Minute)}
		if task.Aleph {
			opts = append(opts, runway.WithAleph()) // this client did not submit it
		}
		res, err := c.WaitForResult(context.Background(), task.ID, opts...)
		var we *runway.WaitError
		switch {
		case err == nil:
			fmt.Println("done:", res.VideoURL)
		case errors.Is(err, runway.ErrTaskFailed):
			fmt.Println("failed:", err)
		case errors.Is(err, runway.ErrWaitTimeout) && errors.As(err, &we):
			fmt.Println("still", we.LastState, "- try again later")
		case errors.Is(err, runway.ErrUnauthorized):
			log.Fatal("check the API key: ", err)
		default:
			fmt.Println("gave up:", err)
		}
	}
}
