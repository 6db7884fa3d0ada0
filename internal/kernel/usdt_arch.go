package kernel

// USDT argument locations and pt_regs register offsets of both
// architectures, compiled into every build so that each is tested on any
// host; usdt_<arch>.go picks the build's own.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// parseUsdtLocationX86 reads an argument's location in AT&T syntax: $CONST,
// %REG, or [OFFSET](%REG).
func parseUsdtLocationX86(loc string, a *usdtArg) error {
	var err error
	switch {
	case strings.HasPrefix(loc, "$"):
		a.Kind = usdtArgConst
		if a.ValOff, err = strconv.ParseInt(loc[1:], 0, 64); err != nil {
			return errors.New("a constant that is not a number")
		}
	case strings.HasPrefix(loc, "%"):
		a.Kind = usdtArgReg
		if a.RegOff, err = x86RegOffset(loc[1:]); err != nil {
			return err
		}
	case strings.HasSuffix(loc, ")"):
		open := strings.IndexByte(loc, '(')
		if open < 0 {
			return errors.New("memory addressing other than OFFSET(%REG) is not supported")
		}
		inner := loc[open+1 : len(loc)-1]
		if !strings.HasPrefix(inner, "%") || strings.Contains(inner, ",") {
			return errors.New("memory addressing other than OFFSET(%REG) is not supported")
		}
		a.Kind = usdtArgRegDeref
		if open > 0 {
			if a.ValOff, err = strconv.ParseInt(loc[:open], 0, 64); err != nil {
				return errors.New("an offset that is not a number (a symbol, %rip-relative?) is not supported")
			}
		}
		if a.RegOff, err = x86RegOffset(inner[1:]); err != nil {
			return err
		}
	default:
		return errors.New("a location Vigil does not read")
	}
	return nil
}

// x86RegOffset is the offset in x86-64's struct pt_regs of the register
// named, in any of its widths (rax, eax, ax, al).
func x86RegOffset(reg string) (uint16, error) {
	// struct pt_regs: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di
	// orig_ax ip cs flags sp ss, 8 bytes each.
	names := [][]string{
		{"r15", "r15d", "r15w", "r15b"}, {"r14", "r14d", "r14w", "r14b"},
		{"r13", "r13d", "r13w", "r13b"}, {"r12", "r12d", "r12w", "r12b"},
		{"rbp", "ebp", "bp", "bpl"}, {"rbx", "ebx", "bx", "bl"},
		{"r11", "r11d", "r11w", "r11b"}, {"r10", "r10d", "r10w", "r10b"},
		{"r9", "r9d", "r9w", "r9b"}, {"r8", "r8d", "r8w", "r8b"},
		{"rax", "eax", "ax", "al"}, {"rcx", "ecx", "cx", "cl"},
		{"rdx", "edx", "dx", "dl"}, {"rsi", "esi", "si", "sil"},
		{"rdi", "edi", "di", "dil"}, nil,
		{"rip", "eip", "ip"}, nil, nil, {"rsp", "esp", "sp", "spl"},
	}
	for i, aliases := range names {
		for _, n := range aliases {
			if n == reg {
				return uint16(8 * i), nil
			}
		}
	}
	return 0, fmt.Errorf("register %%%s: not one Vigil reads", reg)
}

// parseUsdtLocationArm64 reads an argument's location in the syntax GCC and
// Clang emit for arm64: CONST, REG, [REG] or [REG, OFFSET].
func parseUsdtLocationArm64(loc string, a *usdtArg) error {
	var err error
	if inner, ok := strings.CutPrefix(loc, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if !ok {
			return errors.New("memory addressing other than [REG, OFFSET] is not supported")
		}
		reg, off, hasOff := strings.Cut(inner, ",")
		a.Kind = usdtArgRegDeref
		if hasOff {
			if a.ValOff, err = strconv.ParseInt(strings.TrimSpace(off), 0, 64); err != nil {
				return errors.New("an offset that is not a number (a register index?) is not supported")
			}
		}
		a.RegOff, err = arm64RegOffset(strings.TrimSpace(reg))
		return err
	}
	if c, err := strconv.ParseInt(loc, 0, 64); err == nil {
		a.Kind, a.ValOff = usdtArgConst, c
		return nil
	}
	a.Kind = usdtArgReg
	a.RegOff, err = arm64RegOffset(loc)
	return err
}

// arm64RegOffset is the offset in arm64's struct pt_regs (its user_pt_regs:
// regs[31], sp, pc) of the register named: x0-x30 or their 32-bit halves
// w0-w30, sp, pc.
func arm64RegOffset(reg string) (uint16, error) {
	switch reg {
	case "sp":
		return 31 * 8, nil
	case "pc":
		return 32 * 8, nil
	}
	if len(reg) > 1 && (reg[0] == 'x' || reg[0] == 'w') {
		if n, err := strconv.Atoi(reg[1:]); err == nil && n >= 0 && n <= 30 && strconv.Itoa(n) == reg[1:] {
			return uint16(8 * n), nil
		}
	}
	return 0, fmt.Errorf("register %s: not one Vigil reads", reg)
}
