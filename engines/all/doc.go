// Package all registers every engine adapter; blank import it.
package all
