// Package all makes sure every engine dialect is registered; blank import
// it. The dialects register themselves in package engines at init, so
// importing engines is enough; this package remains for callers that
// import it, and holds the fuzz target over every dialect's parser.
package all
