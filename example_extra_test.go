package runway_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	runway "github.com/b9c9aec2/runway-go"
)

// A field the SDK does not model, such as the older API's "model", goes in Extra; it is sent
// after the modeled fields and can never override one of them.
func ExampleGenerateRequest_extra() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println(string(body))
		_, _ = io.WriteString(w, `{"code":200,"msg":"success","data":{"taskId":"task-1"}}`)
	}))
	defer srv.Close()
	c, err := runway.NewClient("kie-api-key", runway.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	req := runway.GenerateRequest{
		Prompt: "a cat surfing", Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9,
		Extra: map[string]any{"model": "runway-duration-5-generate"},
	}
	if _, err := c.Generate(context.Background(), req); err != nil {
		log.Fatal(err)
	}

	req.Extra = map[string]any{"prompt": "something else"}
	_, err = c.Generate(context.Background(), req)
	fmt.Println(err)
	// Output:
	// {"prompt":"a cat surfing","duration":5,"quality":"720p","aspectRatio":"16:9","waterMark":"","model":"runway-duration-5-generate"}
	// runway: invalid request: Extra: "prompt" is a field the SDK sets; use the request's own field
}
