package runwaytest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// A task submitted to the fake walks its states and succeeds; polling sees the result.
func ExampleNewServer() {
	srv := runwaytest.NewServer()
	defer srv.Close()
	c, _ := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL))
	ctx := context.Background()

	id, _ := c.Generate(ctx, runway.GenerateRequest{
		Prompt: "a cat surfing", Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9,
	})
	info, _ := srv.WaitTerminal(ctx, id) // no sleeping: wait for the fake's own event
	task, _ := c.GetTask(ctx, id)
	fmt.Println(info.History)
	fmt.Println(task.State, task.VideoURL != "")
	// Output:
	// [wait queueing generating success]
	// success true
}

// Script a failure for the next task and step it by hand.
func ExampleServer_ScriptNext() {
	srv := runwaytest.NewServer(runwaytest.WithManualSteps())
	defer srv.Close()
	c, _ := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL))
	ctx := context.Background()

	srv.ScriptNext(1, runwaytest.Script{Outcome: runwaytest.FailModeration()})
	id, _ := c.Generate(ctx, runway.GenerateRequest{
		Prompt: "something rude", Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio1x1,
	})
	for range 3 {
		st, _ := srv.Advance(id)
		fmt.Println(st)
	}
	task, _ := c.GetTask(ctx, id)
	err := task.Result().Err()
	fmt.Println(errors.Is(err, runway.ErrModeration))
	// Output:
	// queueing
	// generating
	// fail
	// true
}

// Receive the fake's signed callback in a plain net/http handler and check what was delivered.
func ExampleServer_WaitCallback() {
	const hmacKey = "webhook-secret"
	srv := runwaytest.NewServer(runwaytest.WithHMACKey(hmacKey))
	defer srv.Close()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Data struct {
				TaskID string `json:"task_id"`
			} `json:"data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		err := runway.VerifySignature(hmacKey, body.Data.TaskID, r.Header.Get(runway.HeaderWebhookTimestamp),
			r.Header.Get(runway.HeaderWebhookSignature), time.Now(), time.Minute)
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer receiver.Close()
	c, _ := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL))
	ctx := context.Background()

	id, _ := c.Generate(ctx, runway.GenerateRequest{
		Prompt: "a cat surfing", Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9,
		CallBackURL: receiver.URL + "/kie/callback",
	})
	st, _ := srv.WaitCallback(ctx, id)
	fmt.Println(st.Delivered, st.Attempts[0].StatusCode)
	// Output:
	// 1 200
}

// A burst of 503s on polling is absorbed by the client's retries.
func ExampleServer_InjectFault() {
	srv := runwaytest.NewServer()
	defer srv.Close()
	c, _ := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL),
		runway.WithRetryBackoff(time.Millisecond, 10*time.Millisecond))
	ctx := context.Background()

	srv.InjectFault(runwaytest.PathCredit, 2, runwaytest.ServerError(http.StatusServiceUnavailable))
	n, err := c.Credits(ctx)
	fmt.Println(n, err)
	for _, r := range srv.Requests() {
		fmt.Println(r.Path, r.Status, r.Fault)
	}
	// Output:
	// 1000 <nil>
	// /api/v1/chat/credit 503 HTTP 503 code 503
	// /api/v1/chat/credit 503 HTTP 503 code 503
	// /api/v1/chat/credit 200
}
