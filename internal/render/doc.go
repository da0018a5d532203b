// Package render turns a request into manifests with a Promise's templates.
//
// Templates are Go text/template. They see the request as .apiVersion,
// .kind, .metadata and .spec, the Promise as .promise.name, and the chosen
// destination as .destination.name and .destination.labels.
//
// # User values cannot change the structure
//
// Everything a template prints passes through one hook, appended to every
// printing action when the template is parsed. It prints a string from
// the request (or a destination label), and anything a function made from
// one, as an opaque token. The output is parsed as YAML with the tokens in
// place, so its structure is exactly what the template author wrote; only
// then are the tokens replaced, inside the parsed scalars, by the real
// values. A value holding a newline, ": ", "---", an anchor or a quote
// therefore stays one string in the place the template put it, and can
// never add a field or a document. Comparisons (eq, if, with) see the real
// values. Map keys from users that are not plain identifiers are tokens
// too, so ranging over a user map is safe as well.
//
// Tokens cannot be forged. A token is a prefix made of 128 random bits for
// each render, and an index into the render's table of minted values; the
// resolver replaces nothing else. A user string that looks like a token,
// as a value or a key, renders as exactly that string. Functions compute
// on the real values and their results are minted in turn, so toJson
// output, concatenations and escapes hold the user's text, never a token.
//
// # Functions
//
//	concat a b ...   joins values into one string value
//	lower s, upper s change case
//	trunc n s        keeps the first n characters
//	default d v      v, or d when v is empty or missing
//	required msg v   fails the render with msg when v is empty or missing
//	toJson v         v as JSON; printed as a whole unquoted scalar it is
//	                 the value itself (a map or list stays one), anywhere
//	                 else (in quotes, or inside other text) its JSON text
//
// The built-in print, printf, println, html, js and urlquery are replaced
// by versions that format the real values.
//
// # Limits
//
// A request renders to at most MaxDocuments documents and MaxBytes bytes;
// every document must have apiVersion, kind and metadata.name.
package render
