package runway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	runway "github.com/b9c9aec2/runway-go"
)

// fakeKie stands in for https://api.kie.ai in the examples: it answers each path with a
// fixed envelope.
func fakeKie(bodies map[string]string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, bodies[r.URL.Path])
	}))
}

func ExampleNewClient() {
	// Bad options are reported together, with the missing key.
	_, err := runway.NewClient("", runway.WithBaseURL("api.kie.ai"), runway.WithMaxRetries(-1))
	fmt.Println(errors.Is(err, runway.ErrMissingAPIKey))

	c, err := runway.NewClient("kie-api-key",
		runway.WithCallbackURL("https://example.com/kie/callback"), // default callBackUrl
		runway.WithMaxRetries(2),                                   // retries for safe requests and 429s
	)
	fmt.Println(c != nil, err)
	// Output:
	// true
	// true <nil>
}

func ExampleClient_Generate() {
	srv := fakeKie(map[string]string{
		"/api/v1/runway/generate":      `{"code":200,"msg":"success","data":{"taskId":"ee603959-debb-48d1-98c4-a6d1c717eba6"}}`,
		"/api/v1/runway/record-detail": `{"code":200,"msg":"success","data":{"taskId":"ee603959-debb-48d1-98c4-a6d1c717eba6","state":"success","videoInfo":{"videoUrl":"https://file.com/k/cat.mp4","imageUrl":"https://file.com/m/cat.png"},"expireFlag":0}}`,
	})
	defer srv.Close()

	c, err := runway.NewClient("kie-api-key", runway.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	id, err := c.Generate(ctx, runway.GenerateRequest{
		Prompt:      "A fluffy orange cat dancing in a room with disco lights",
		Duration:    5,
		Quality:     runway.Quality720p,
		AspectRatio: runway.AspectRatio16x9,
	})
	if err != nil {
		log.Fatal(err)
	}
	task, err := c.GetTask(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(id)
	fmt.Println(task.State, task.VideoURL)
	// Output:
	// ee603959-debb-48d1-98c4-a6d1c717eba6
	// success https://file.com/k/cat.mp4
}

func Example_errors() {
	srv := fakeKie(map[string]string{
		"/api/v1/runway/generate":      `{"code":402,"msg":"Insufficient credits","data":null}`,
		"/api/v1/runway/record-detail": `{"code":200,"msg":"success","data":{"taskId":"t-1","state":"fail","failCode":"400","failMsg":"Reached the limit for concurrent generations."}}`,
	})
	defer srv.Close()
	c, err := runway.NewClient("kie-api-key", runway.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	// Refused locally: nothing is sent.
	_, err = c.Generate(ctx, runway.GenerateRequest{Prompt: "a cat", Duration: 10, Quality: runway.Quality1080p, AspectRatio: runway.AspectRatio1x1})
	var ve *runway.ValidationError
	if errors.As(err, &ve) {
		fmt.Println("invalid:", ve.Field, errors.Is(err, runway.ErrInvalidRequest))
	}

	// Refused by the API: an *APIError matching the sentinel of its code.
	_, err = c.Generate(ctx, runway.GenerateRequest{Prompt: "a cat", Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio1x1})
	var ae *runway.APIError
	if errors.As(err, &ae) {
		fmt.Println("api:", ae.Code, ae.Message, errors.Is(err, runway.ErrInsufficientCredits), errors.Is(err, runway.ErrQuota))
	}
	if errors.Is(err, runway.ErrOutcomeUnknown) {
		fmt.Println("the task may exist: look it up before resubmitting")
	}

	// The task ran and failed: a classified *TaskError.
	task, err := c.GetTask(ctx, "t-1")
	if err != nil {
		log.Fatal(err)
	}
	err = task.Result().Err()
	var te *runway.TaskError
	if errors.As(err, &te) {
		fmt.Println("task:", te.Kind, te.Retryable(), errors.Is(err, runway.ErrConcurrency))
	}
	// Output:
	// invalid: Quality true
	// api: 402 Insufficient credits true true
	// task: concurrency true true
}
