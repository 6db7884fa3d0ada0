package kernel

import "debug/elf"

const usdtMachine = elf.EM_AARCH64

var (
	parseUsdtLocation = parseUsdtLocationArm64
	ptRegsOffset      = arm64RegOffset
)
