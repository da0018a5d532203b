// Package claims keeps the router's in-memory index of the keys requests
// claim (a Promise's spec.claims, for example a DynamoDB table name), and
// decides which request may hold a key when two want it.
//
// # Holders and ranking
//
// Every request of a kind whose Promise declares claims is a Holder: its
// rendered keys, its destination ("" when not placed), whether its content
// is already written there, its creation time and UID. Two holders
// conflict on a key when their claims share a name and key and their
// scopes overlap. Of two conflicting holders, the one holding the key
// already (written with it, or granted it by this process) keeps it; then
// the older (creationTimestamp, then UID), so every replica and every
// restart decides the same. A holder not placed yet has no known scope
// and conflicts in every scope.
//
// # Scopes
//
// A claim's scope says where its key must be unique: per destination, per
// AWS endpoint and region (destinations without spec.aws share one such
// scope), or globally. When two Promises declare one claim name with
// different scopes, the broader applies between their requests.
//
// # Feeding the index
//
// The request reconcilers feed it from their informers (Observe, Release)
// and ask it at decision time (Decide), so a decision costs no API call.
// After a restart a decision about a claim name waits until the requests
// of every Promise declaring it are loaded (Primed). A holder's release,
// or a change that may free a key, wakes the requests that lost to it
// through the channel Subscribe returns.
package claims
