/* cflags: -fno-omit-frame-pointer */
#include <unistd.h>
__attribute__((noinline)) int vigil_inner(int n) { return n + 1; }
__attribute__((noinline)) int vigil_outer(int n) { return vigil_inner(n) * 2; }
int main(void) { int r = vigil_outer(1); sleep(5); return r != 4; }
