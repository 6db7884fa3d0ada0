/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Policy hooks: what TracingPolicies attach. Every hook, whatever its
 * mechanism, reads its arguments into a hook_scratch and then runs the same
 * compiled selector table (struct hook_conf, written by internal/kernel from
 * what internal/policy compiled): selectors in order, the first that matches
 * decides the actions. Nothing that no selector wants reaches the ring buffer. */
#pragma once

/* By concern, each including the one before: */
#include "hook_types.h"  /* layouts and numbers shared with user space */
#include "hook_maps.h"   /* maps and the per-CPU scratch */
#include "hook_match.h"  /* the selector tests */
#include "hook_args.h"   /* reading arguments by type */
#include "hook_output.h" /* socket tracking and the event */
