/* vigil_target, for the uprobe tests. */
#include <stdio.h>
__attribute__((noinline)) int vigil_target(int n, const char *s) { return printf("%d %s\n", n, s); }
int main(int argc, char **argv) { return vigil_target(argc, argc > 1 ? argv[1] : "") < 0; }
