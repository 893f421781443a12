package runway_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

// Mount the client's handler in your mux: results reach the result func and wake the client's
// WaitForResult calls.
func ExampleClient_CallbackHandler() {
	c, err := runway.NewClient("YOUR_KIE_API_KEY",
		runway.WithCallbackURL("https://example.com/kie/callback"))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /kie/callback", c.CallbackHandler(
		runway.WithHMACKey("YOUR_WEBHOOK_HMAC_KEY"),
		runway.WithResultFunc(func(ctx context.Context, r *runway.Result) error {
			if err := r.Err(); err != nil {
				log.Printf("task %s failed: %v", r.TaskID, err)
				return nil // a failed task is still a delivered result
			}
			log.Printf("task %s: %s", r.TaskID, r.VideoURL)
			return nil // an error here answers 500 and Kie delivers again later
		}),
	))
	_ = mux // http.ListenAndServe(":8080", mux)
}

// A standalone handler, exercised the way Kie calls it. SignCallback makes the same headers
// Kie sends, so you can test your own handler.
func ExampleNewCallbackHandler() {
	const key = "webhook-hmac-key"
	h := runway.NewCallbackHandler(
		runway.WithHMACKey(key),
		runway.WithResultFunc(func(ctx context.Context, r *runway.Result) error {
			fmt.Println("processing", r.TaskID, r.Code)
			return nil
		}),
	)
	body := `{"code":200,"msg":"All generated successfully.","data":{"task_id":"task-1",` +
		`"video_id":"v1","video_url":"https://file.com/k/1.mp4","image_url":"https://file.com/m/1.png"}}`
	deliver := func(signed bool) int {
		req := httptest.NewRequest(http.MethodPost, "/kie/callback", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if signed {
			ts, sig := runway.SignCallback(key, "task-1", time.Now())
			req.Header.Set(runway.HeaderWebhookTimestamp, ts)
			req.Header.Set(runway.HeaderWebhookSignature, sig)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	fmt.Println("unsigned:", deliver(false))
	fmt.Println("signed:", deliver(true))
	fmt.Println("redelivered:", deliver(true))
	// Output:
	// unsigned: 401
	// processing task-1 200
	// signed: 200
	// redelivered: 200
}

// ParseCallback decodes either callback shape and classifies failures.
func ExampleParseCallback() {
	body := []byte(`{"code":400,"msg":"Your prompt was caught by our AI moderator. Please adjust it and try again!",` +
		`"data":null,"taskId":"aleph-1"}`)
	r, err := runway.ParseCallback(body)
	if err != nil {
		log.Fatal(err) // errors.Is(err, runway.ErrInvalidCallback)
	}
	err = r.Err()
	var te *runway.TaskError
	fmt.Println(r.TaskID, r.Code, errors.Is(err, runway.ErrModeration), errors.As(err, &te) && !te.Retryable())

	_, err = runway.ParseCallback([]byte(`{"code":"200","data":{"task_id":"t"}}`))
	fmt.Println(errors.Is(err, runway.ErrInvalidCallback), err)
	// Output:
	// aleph-1 400 true true
	// true runway: invalid callback: code: want an integer status code between 100 and 999
}

// VerifySignature checks Kie's headers in a handler of your own.
func ExampleVerifySignature() {
	const key = "webhook-hmac-key"
	now := time.Unix(1769670760, 0)
	ts, sig := runway.SignCallback(key, "task-1", now)
	fmt.Println(runway.VerifySignature(key, "task-1", ts, sig, now, runway.DefaultCallbackTolerance))
	err := runway.VerifySignature(key, "task-1", ts, sig, now.Add(time.Hour), runway.DefaultCallbackTolerance)
	fmt.Println(errors.Is(err, runway.ErrTimestampOutOfRange))
	// Output:
	// <nil>
	// true
}
