module github.com/b9c9aec2/runway-go/redisstore

go 1.26.0

require (
	github.com/b9c9aec2/runway-go v0.2.0
	github.com/redis/go-redis/v9 v9.23.0
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
)

// Local development builds against the root module in this repository. Users get the root at
// the version required above (replace directives apply only inside this module); RELEASING.md
// says how the two are released together.
replace github.com/b9c9aec2/runway-go => ../

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	github.com/hashicorp/go-retryablehttp v0.7.8 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
