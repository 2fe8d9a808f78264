/* psa-stress bench: the host's cross-core cache-line round trip, in nanoseconds.
 *
 * Two threads, pinned to the first two CPUs this process may use, hand one cache line back and
 * forth ROUND_TRIPS times per batch; prints the median of BATCHES batches (ns per round trip).
 * Why the benchmarks probe it around every driver run: bench/host_probe.py. Exit 2 with one
 * line when fewer than two CPUs are usable. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUND_TRIPS 100000
#define BATCHES 5

static _Alignas(64) atomic_int ball; /* 1: the ball is with the second thread */

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *returner(void *cpu)
{
    pin(*(int *) cpu);
    for (long i = 0; i < (long) ROUND_TRIPS * BATCHES; i++) {
        while (atomic_load_explicit(&ball, memory_order_acquire) != 1) {
        }
        atomic_store_explicit(&ball, 0, memory_order_release);
    }
    return NULL;
}

static double batch_ns(void)
{
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < ROUND_TRIPS; i++) {
        atomic_store_explicit(&ball, 1, memory_order_release);
        while (atomic_load_explicit(&ball, memory_order_acquire) != 0) {
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    return ((double) (end.tv_sec - start.tv_sec) * 1e9 + (double) (end.tv_nsec - start.tv_nsec))
           / ROUND_TRIPS;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

int main(void)
{
    cpu_set_t allowed;
    int cpus[2], found = 0;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE && found < 2; cpu++) {
            if (CPU_ISSET(cpu, &allowed)) {
                cpus[found++] = cpu;
            }
        }
    }
    if (found < 2) {
        fprintf(stderr, "cross_core_probe: fewer than two usable CPUs\n");
        return 2;
    }
    pin(cpus[0]);
    pthread_t thread;
    if (pthread_create(&thread, NULL, returner, &cpus[1]) != 0) {
        fprintf(stderr, "cross_core_probe: cannot start a thread\n");
        return 2;
    }
    double batches[BATCHES];
    for (int b = 0; b < BATCHES; b++) {
        batches[b] = batch_ns();
    }
    pthread_join(thread, NULL);
    qsort(batches, BATCHES, sizeof(batches[0]), by_value);
    printf("%.0f\n", batches[BATCHES / 2]);
    return 0;
}
