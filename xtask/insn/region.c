/* A QEMU TCG plugin for `cargo xtask bench`: exact counts of the guest instructions
 * executed between a call of one marker function and the next call of another.
 *
 *   qemu-system-arm ... -plugin libregion.so,start=0xADDR,end=0xADDR -d plugin -D LOG
 *
 * Every executed instruction adds one to a counter (an inline add, so the count is
 * exact and the same on every run). Reaching `start` remembers the counter; reaching
 * `end` prints "region N: COUNT insns". At exit it prints "total: COUNT insns". The
 * count of a region includes the marker calls themselves: measure an empty region and
 * subtract it.
 *
 * With `profile=FILE` it also counts each instruction address, and at exit writes
 * "ADDR COUNT" lines (hexadecimal address, decimal count) to FILE for the instructions
 * executed in the last region: where the instructions of one inference go. Addresses
 * are kept modulo PROFILE_SPAN, more than any firmware of ours holds.
 *
 * Build it for the plugin API of the QEMU that loads it: gcc -shared -fPIC
 * -DFITNETS_QEMU_PLUGIN_API=N (`cargo xtask bench` reads N off `qemu-system-arm
 * --version`; without it, N is 1). */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The few declarations of QEMU's plugin API this plugin needs, written here because
 * distributions do not ship QEMU's header (include/qemu/qemu-plugin.h; from QEMU 11.0,
 * include/plugins/qemu-plugin.h). QEMU loads a plugin only if its `qemu_plugin_version`
 * lies between the minimum API version the QEMU accepts and the one it declares; the
 * version a QEMU declares it always accepts, so the plugin is built against that one:
 *
 *   API  QEMU         minimum accepted
 *   0    4.2 - 5.2    0
 *   1    6.0 - 8.2    0
 *   2    9.0          2
 *   3    9.1          2 or more
 *   4    9.2 - 10.0   2 or more
 *   5    10.1 - 10.2  2 or more
 *   6    11.0         2 or more
 *
 * For this plugin only version 2 matters: it removed the inline ops on a plain pointer;
 * an inline op adds to a scoreboard entry (per-vCPU memory) instead. 1 changed the
 * hardware-address queries, 3 to 6 qemu_plugin_insn_data and register access and added
 * functions; none of them is used here. Version 7 (QEMU's development tree after 11.0)
 * gives the callbacks a userdata argument and is not supported. */
#ifndef FITNETS_QEMU_PLUGIN_API
#define FITNETS_QEMU_PLUGIN_API 1
#endif
#if FITNETS_QEMU_PLUGIN_API < 0 || FITNETS_QEMU_PLUGIN_API > 6
#error "FITNETS_QEMU_PLUGIN_API: region.c knows QEMU's plugin API versions 0 to 6"
#endif
#define SCOREBOARDS (FITNETS_QEMU_PLUGIN_API >= 2)

/* Every version, 0 to 6. */
typedef uint64_t plugin_id;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct {
    const char *target_name;
    struct { int min; int cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
enum { NO_REGS = 0 };      /* enum qemu_plugin_cb_flags: QEMU_PLUGIN_CB_NO_REGS */
enum { ADD_U64 = 0 };      /* enum qemu_plugin_op: QEMU_PLUGIN_INLINE_ADD_U64 */
void qemu_plugin_register_vcpu_tb_trans_cb(plugin_id id, void (*cb)(plugin_id, struct qemu_plugin_tb *));
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, void (*cb)(unsigned int, void *),
                                            int flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t index);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(plugin_id id, void (*cb)(plugin_id, void *), void *userdata);
void qemu_plugin_outs(const char *text);

#if !SCOREBOARDS
/* Versions 0 and 1: an inline op adds to a plain uint64_t. */
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, int op, void *ptr, uint64_t imm);
#else
/* Versions 2 to 6: a scoreboard holds an element of `element_size` bytes per vCPU; an
 * inline op adds to the uint64_t at `offset` in the element of the vCPU that runs it. */
struct qemu_plugin_scoreboard;
typedef struct {
    struct qemu_plugin_scoreboard *score;
    size_t offset;
} qemu_plugin_u64;
struct qemu_plugin_scoreboard *qemu_plugin_scoreboard_new(size_t element_size);
void *qemu_plugin_scoreboard_find(struct qemu_plugin_scoreboard *score, unsigned int vcpu_index);
void qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(struct qemu_plugin_insn *insn, int op,
                                                         qemu_plugin_u64 entry, uint64_t imm);
uint64_t qemu_plugin_u64_sum(qemu_plugin_u64 entry);
int qemu_plugin_num_vcpus(void);
#endif

__attribute__((visibility("default"))) int qemu_plugin_version = FITNETS_QEMU_PLUGIN_API;

static uint64_t region_start;
static unsigned regions;
/* Thumb addresses: the low bit of a function symbol is not part of the address. */
static uint64_t start_marker = UINT64_MAX, end_marker = UINT64_MAX;

/* The profile: for each 16-bit instruction slot, its counter's value when the current
 * region started, the last region's count, and its address (the counters follow). */
#define PROFILE_SPAN (1u << 20)
#define PROFILE_SLOTS (PROFILE_SPAN / 2)
static const char *profile_path;
static uint64_t *slot_start, *slot_last, *slot_addr;

static size_t slot_of(uint64_t at) { return (size_t)((at % PROFILE_SPAN) / 2); }

/* The counters: where the inline adds go, and their sums over the vCPUs (the machines
 * have one). */
#if !SCOREBOARDS
static uint64_t executed;
static uint64_t *slot_count;

static bool counters_new(void) {
    if (profile_path && !(slot_count = calloc(PROFILE_SLOTS, sizeof *slot_count))) return false;
    return true;
}
static void count_executed(struct qemu_plugin_insn *insn) {
    qemu_plugin_register_vcpu_insn_exec_inline(insn, ADD_U64, &executed, 1);
}
static void count_slot(struct qemu_plugin_insn *insn, size_t slot) {
    qemu_plugin_register_vcpu_insn_exec_inline(insn, ADD_U64, &slot_count[slot], 1);
}
static uint64_t executed_now(void) { return executed; }
static void slots_now(uint64_t *into) { memcpy(into, slot_count, PROFILE_SLOTS * sizeof *into); }
#else
/* One uint64_t per vCPU for the total; PROFILE_SLOTS of them per vCPU for the profile
 * (QEMU allocates room for 16 vCPUs at first: 64 MiB). */
static qemu_plugin_u64 executed;
static struct qemu_plugin_scoreboard *slot_board;

static bool counters_new(void) {
    executed = (qemu_plugin_u64){qemu_plugin_scoreboard_new(sizeof(uint64_t)), 0};
    if (!executed.score) return false;
    if (profile_path && !(slot_board = qemu_plugin_scoreboard_new(PROFILE_SLOTS * sizeof(uint64_t)))) return false;
    return true;
}
static void count_executed(struct qemu_plugin_insn *insn) {
    qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, ADD_U64, executed, 1);
}
static void count_slot(struct qemu_plugin_insn *insn, size_t slot) {
    qemu_plugin_u64 entry = {slot_board, slot * sizeof(uint64_t)};
    qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, ADD_U64, entry, 1);
}
static uint64_t executed_now(void) { return qemu_plugin_u64_sum(executed); }
static void slots_now(uint64_t *into) {
    memset(into, 0, PROFILE_SLOTS * sizeof *into);
    for (int vcpu = 0, n = qemu_plugin_num_vcpus(); vcpu < n; vcpu++) {
        const uint64_t *counts = qemu_plugin_scoreboard_find(slot_board, (unsigned)vcpu);
        for (size_t i = 0; i < PROFILE_SLOTS; i++) into[i] += counts[i];
    }
}
#endif

static void entered(unsigned int vcpu, void *data) {
    (void)vcpu, (void)data;
    region_start = executed_now();
    if (profile_path) slots_now(slot_start);
}

static void left(unsigned int vcpu, void *data) {
    (void)vcpu, (void)data;
    char line[80];
    snprintf(line, sizeof line, "region %u: %" PRIu64 " insns\n", regions++, executed_now() - region_start);
    qemu_plugin_outs(line);
    if (profile_path) {
        slots_now(slot_last);
        for (size_t i = 0; i < PROFILE_SLOTS; i++) slot_last[i] -= slot_start[i];
    }
}

static void translated(plugin_id id, struct qemu_plugin_tb *tb) {
    (void)id;
    for (size_t i = 0, n = qemu_plugin_tb_n_insns(tb); i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t at = qemu_plugin_insn_vaddr(insn);
        if (at == start_marker) qemu_plugin_register_vcpu_insn_exec_cb(insn, entered, NO_REGS, NULL);
        if (at == end_marker) qemu_plugin_register_vcpu_insn_exec_cb(insn, left, NO_REGS, NULL);
        count_executed(insn);
        if (profile_path) {
            slot_addr[slot_of(at)] = at;
            count_slot(insn, slot_of(at));
        }
    }
}

static void finished(plugin_id id, void *data) {
    (void)id, (void)data;
    char line[64];
    snprintf(line, sizeof line, "total: %" PRIu64 " insns\n", executed_now());
    qemu_plugin_outs(line);
    if (!profile_path) return;
    FILE *out = fopen(profile_path, "w");
    if (!out) {
        fprintf(stderr, "region plugin: cannot write %s\n", profile_path);
        return;
    }
    for (size_t i = 0; i < PROFILE_SLOTS; i++)
        if (slot_last[i]) fprintf(out, "%" PRIx64 " %" PRIu64 "\n", slot_addr[i], slot_last[i]);
    fclose(out);
}

__attribute__((visibility("default"))) int qemu_plugin_install(plugin_id id, const qemu_info_t *info, int argc,
                                                               char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "start=", 6) == 0) {
            start_marker = strtoull(argv[i] + 6, NULL, 0) & ~(uint64_t)1;
        } else if (strncmp(argv[i], "end=", 4) == 0) {
            end_marker = strtoull(argv[i] + 4, NULL, 0) & ~(uint64_t)1;
        } else if (strncmp(argv[i], "profile=", 8) == 0) {
            profile_path = strdup(argv[i] + 8);
        } else {
            fprintf(stderr, "region plugin: unknown argument %s (expected start=ADDR, end=ADDR, profile=FILE)\n",
                    argv[i]);
            return -1;
        }
    }
    if (start_marker == UINT64_MAX || end_marker == UINT64_MAX) {
        fprintf(stderr, "region plugin: needs start=ADDR and end=ADDR\n");
        return -1;
    }
    if (profile_path) {
        slot_start = calloc(PROFILE_SLOTS, sizeof *slot_start);
        slot_last = calloc(PROFILE_SLOTS, sizeof *slot_last);
        slot_addr = calloc(PROFILE_SLOTS, sizeof *slot_addr);
        if (!slot_start || !slot_last || !slot_addr) {
            fprintf(stderr, "region plugin: out of memory for the profile\n");
            return -1;
        }
    }
    if (!counters_new()) {
        fprintf(stderr, "region plugin: out of memory for the counters\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
    qemu_plugin_register_atexit_cb(id, finished, NULL);
    return 0;
}
