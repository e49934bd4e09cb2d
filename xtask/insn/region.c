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
 * are kept modulo PROFILE_SPAN, more than any firmware of ours holds. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The few declarations of QEMU's plugin API (version 1, as in QEMU 7.2) this plugin
 * needs; distributions do not always ship the header. */
typedef uint64_t plugin_id;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct {
    const char *target_name;
    struct { int min; int cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
enum { NO_REGS = 0 };      /* enum qemu_plugin_cb_flags */
enum { ADD_U64 = 0 };      /* enum qemu_plugin_op */
void qemu_plugin_register_vcpu_tb_trans_cb(plugin_id id, void (*cb)(plugin_id, struct qemu_plugin_tb *));
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, void (*cb)(unsigned int, void *),
                                            int flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, int op, void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t index);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(plugin_id id, void (*cb)(plugin_id, void *), void *userdata);
void qemu_plugin_outs(const char *text);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t executed;
static uint64_t region_start;
static unsigned regions;
/* Thumb addresses: the low bit of a function symbol is not part of the address. */
static uint64_t start_marker = UINT64_MAX, end_marker = UINT64_MAX;

/* The profile: a counter per 16-bit instruction slot, its value when the current region
 * started, and the last region's counts. */
#define PROFILE_SPAN (1u << 20)
#define PROFILE_SLOTS (PROFILE_SPAN / 2)
static const char *profile_path;
static uint64_t *slot_count, *slot_start, *slot_last, *slot_addr;

static size_t slot_of(uint64_t at) { return (size_t)((at % PROFILE_SPAN) / 2); }

static void entered(unsigned int vcpu, void *data) {
    (void)vcpu, (void)data;
    region_start = executed;
    if (profile_path) memcpy(slot_start, slot_count, PROFILE_SLOTS * sizeof *slot_count);
}

static void left(unsigned int vcpu, void *data) {
    (void)vcpu, (void)data;
    char line[80];
    snprintf(line, sizeof line, "region %u: %" PRIu64 " insns\n", regions++, executed - region_start);
    qemu_plugin_outs(line);
    if (profile_path)
        for (size_t i = 0; i < PROFILE_SLOTS; i++) slot_last[i] = slot_count[i] - slot_start[i];
}

static void translated(plugin_id id, struct qemu_plugin_tb *tb) {
    (void)id;
    for (size_t i = 0, n = qemu_plugin_tb_n_insns(tb); i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t at = qemu_plugin_insn_vaddr(insn);
        if (at == start_marker) qemu_plugin_register_vcpu_insn_exec_cb(insn, entered, NO_REGS, NULL);
        if (at == end_marker) qemu_plugin_register_vcpu_insn_exec_cb(insn, left, NO_REGS, NULL);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, ADD_U64, &executed, 1);
        if (profile_path) {
            slot_addr[slot_of(at)] = at;
            qemu_plugin_register_vcpu_insn_exec_inline(insn, ADD_U64, &slot_count[slot_of(at)], 1);
        }
    }
}

static void finished(plugin_id id, void *data) {
    (void)id, (void)data;
    char line[64];
    snprintf(line, sizeof line, "total: %" PRIu64 " insns\n", executed);
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
        slot_count = calloc(PROFILE_SLOTS, sizeof *slot_count);
        slot_start = calloc(PROFILE_SLOTS, sizeof *slot_start);
        slot_last = calloc(PROFILE_SLOTS, sizeof *slot_last);
        slot_addr = calloc(PROFILE_SLOTS, sizeof *slot_addr);
        if (!slot_count || !slot_start || !slot_last || !slot_addr) {
            fprintf(stderr, "region plugin: out of memory for the profile\n");
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
    qemu_plugin_register_atexit_cb(id, finished, NULL);
    return 0;
}
