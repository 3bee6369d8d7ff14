/* no_main_trailer.h - the main trailer for a specification example that
 * defines no main of its own: the stub's `int main` runs, so crt0 uses its
 * return value. */
const int __neo_main_returns_void = 0;
