package kernel

import "debug/elf"

const usdtMachine = elf.EM_X86_64

var (
	parseUsdtLocation = parseUsdtLocationX86
	ptRegsOffset      = x86RegOffset
)
