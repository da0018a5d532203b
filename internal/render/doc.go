// Package render turns a request into manifests with a Promise's templates.
//
// Templates are Go text/template. They see the request as .apiVersion,
// .kind, .metadata and .spec, the Promise as .promise.name, and the chosen
// destination as .destination.name and .destination.labels.
//
// # User values cannot change the structure
//
// Every string that comes from the request (or a destination label) reaches
// the template as an opaque token. The output is parsed as YAML with the
// tokens in place, so its structure is exactly what the template author
// wrote; only then are the tokens replaced, inside the parsed scalars, by
// the real values. A value holding a newline, ": ", "---", an anchor or a
// quote therefore stays one string in the place the template put it, and
// can never add a field or a document. Comparisons (eq, if, with) see the
// real values. Map keys from users that are not plain identifiers are
// tokens too, so ranging over a user map is safe as well.
//
// # Functions
//
//	concat a b ...   joins values into one string value
//	lower s, upper s change case
//	trunc n s        keeps the first n characters
//	default d v      v, or d when v is empty or missing
//	required msg v   fails the render with msg when v is empty or missing
//	toJson v         v as JSON (valid YAML flow style, every string quoted)
//
// # Limits
//
// A request renders to at most MaxDocuments documents and MaxBytes bytes;
// every document must have apiVersion, kind and metadata.name.
package render
