package redisstore_test

import (
	"log"
	"os"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/redisstore"
	"github.com/redis/go-redis/v9"
)

// Every replica creates its Store on the same Redis and hands it to its client: a callback
// accepted on one replica then wakes WaitForResult on all of them, and a late
// WaitForResult finds the result in Redis. The same Store is the callback handler's
// Deduper, so a callback retried onto another replica is not processed twice.
func Example() {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "localhost:6379",
		ContextTimeoutEnabled: true, // lets the Store's per-operation timeout bound slow calls
	})
	defer rdb.Close()

	store := redisstore.New(rdb) // defaults: prefix "runway:", done markers 24 h, results 1 h
	defer store.Close()

	c, err := runway.NewClient(os.Getenv("KIE_API_KEY"), runway.WithResultBus(store))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// Mount c.CallbackHandler(runway.WithDeduper(store)) and call c.WaitForResult as usual.
}
