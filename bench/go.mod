module github.com/b9c9aec2/runway-go/bench

go 1.26.0

require (
	github.com/b9c9aec2/runway-go v0.2.0
	github.com/standard-webhooks/standard-webhooks/libraries v0.0.1
	github.com/stripe/stripe-go/v82 v82.5.1
	go.uber.org/goleak v1.3.0
)

require (
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	github.com/hashicorp/go-retryablehttp v0.7.8 // indirect
)

// Local development builds against the root module in this repository (replace directives
// apply only inside this module).
replace github.com/b9c9aec2/runway-go => ../
