/* vigil_test:tick, for TestUsdtHookReadsProbeArguments. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((section(".probes"))) volatile unsigned short vigil_test_tick_semaphore;

__attribute__((noinline)) static void tick(int32_t a, int64_t b)
{
	int64_t m = b + 1;
	if (vigil_test_tick_semaphore)
		__asm__ __volatile__(
			"990: nop\n"
			".pushsection .note.stapsdt,\"\",\"note\"\n"
			".balign 4\n"
			".4byte 992f-991f, 994f-993f, 3\n"
			"991: .asciz \"stapsdt\"\n"
			"992: .balign 4\n"
			"993: .8byte 990b\n"
			".8byte _.stapsdt.base\n"
			".8byte vigil_test_tick_semaphore\n"
			".asciz \"vigil_test\"\n"
			".asciz \"tick\"\n"
			".asciz \"-4@%[a] 8@%[b] -8@%[m] 4@%[c]\"\n"
			"994: .balign 4\n"
			".popsection\n"
			".ifndef _.stapsdt.base\n"
			".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n"
			".weak _.stapsdt.base\n"
			".hidden _.stapsdt.base\n"
			"_.stapsdt.base: .space 1\n"
			".size _.stapsdt.base, 1\n"
			".popsection\n"
			".endif\n"
			:: [a] "r"(a), [b] "r"(b), [m] "m"(m), [c] "i"(7));
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;
	for (int i = 0; i < n; i++)
		tick(-5 - i, ((int64_t)1 << 40) + i);
	printf("%d\n", vigil_test_tick_semaphore);
	return 0;
}
