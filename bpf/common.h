/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by every Vigil BPF program: kernel types, libbpf helpers, the record
 * header that user space dispatches on, and the drop counters. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

/* BOUND masks x in the register it is used from. Clang may otherwise keep
 * the masked value on the stack and reload it, and older verifiers (6.1)
 * lose its bounds on the way: "R2 min value is negative". */
#define BOUND(x, mask) ({ __u64 __b = (x); asm volatile("%0 &= " #mask : "+r"(__b)); __b; })

/* VIGIL_COMPAT is set for the second object, sensorCompat, which Linux
 * 5.10 to 5.16 load: those kernels lack bpf_loop (5.17), so that build runs
 * path walks as bounded loops (path.h) and leaves substring operators to
 * user space to refuse; and before 5.12 a global function may take only
 * scalars and the context (hook_match.h, ARG_PARAMS and the rest). */

/* Record kinds; internal/kernel/record.go mirrors these values. */
enum vigil_record_kind {
	RECORD_EXEC = 1,
	RECORD_FORK = 2,
	RECORD_EXIT = 3,
	RECORD_HOOK = 4,
	RECORD_CONNECT_DENIED = 5,
};

/* Every ring buffer record starts with this header. ktime is CLOCK_BOOTTIME
 * so that records and /proc start times share one clock. */
struct record_header {
	__u8 kind;
	__u8 pad[3];
	__u32 cpu;
	__u64 ktime;
};

/* Indexes into the drops map; internal/kernel/record.go mirrors them. */
enum vigil_drop_reason {
	DROP_RINGBUF_FULL = 0,
	DROP_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);

	if (n)
		*n += 1;
}

/* User space sizes the ring buffer before load (ring_buffer_size). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* backlog_records counts, per CPU, records emitted while the reader is a
 * quarter of the ring behind. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} backlog_records SEC(".maps");

/* A reader a quarter of the ring behind is woken once per WAKE_EVERY
 * records of a CPU, not per record. */
#define WAKE_EVERY 256

/* emit copies size bytes of a prepared record into the ring buffer and counts
 * the record as dropped when the buffer is full, so loss is never silent.
 *
 * A wakeup costs more than the rest of the sensor together (an interrupt,
 * a hypervisor exit on VMs), and user space polls the buffer on a short
 * timer anyway (internal/kernel/sensor.go, pollInterval). So records do not
 * wake the reader until a quarter of the buffer waits; past that, one in
 * WAKE_EVERY does: the reader is then either busy reading, and the wakeups
 * are wasted, or asleep until its next poll, and the buffer must not fill
 * meanwhile. Waking on every record there made a posted event cost 5 µs in
 * the kernel instead of a few hundred ns (make bench, openat table). */
static __always_inline void emit(void *record, __u64 size)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >
	    bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 4) {
		__u32 zero = 0;
		__u32 *n = bpf_map_lookup_elem(&backlog_records, &zero);

		if (!n || (*n)++ % WAKE_EVERY == 0)
			flags = BPF_RB_FORCE_WAKEUP;
	}
	if (bpf_ringbuf_output(&events, record, size, flags))
		count_drop(DROP_RINGBUF_FULL);
}

static __always_inline void fill_header(struct record_header *hdr, __u8 kind)
{
	hdr->kind = kind;
	hdr->cpu = bpf_get_smp_processor_id();
	hdr->ktime = bpf_ktime_get_boot_ns();
}
