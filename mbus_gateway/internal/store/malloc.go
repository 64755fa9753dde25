package store

/*
#ifdef __GLIBC__
#include <malloc.h>
static void limit_malloc_arenas(void) { mallopt(M_ARENA_MAX, 1); }
#else
static void limit_malloc_arenas(void) {}
#endif
*/
import "C"

// glibc gives every thread that calls malloc an arena of its own, up to
// eight per core, and each keeps the memory freed in it. SQLite is called
// from whichever thread the Go scheduler picks, so without a limit a
// handful of arenas hold a megabyte or more of free C heap. One arena is
// plenty for one connection. (musl, in the add-on image, has no arenas.)
func init() {
	C.limit_malloc_arenas()
}
