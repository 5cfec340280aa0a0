/* clockprobe: what a C program reads as the wall clock, for netdriver's clock tests.
 *
 *   clockprobe now             CLOCK_REALTIME, in seconds since the epoch (with nanoseconds)
 *   clockprobe all             REALTIME, REALTIME_COARSE, TAI, gettimeofday and time, a line each
 *   clockprobe samples SECS    every 20 ms for SECS seconds: "MONO1 REAL MONO2", CLOCK_REALTIME
 *                              read between two CLOCK_MONOTONIC reads (for pace and jumps)
 *   clockprobe bench N         nanoseconds per clock_gettime(CLOCK_REALTIME) over N calls
 *
 * Built static and dynamic by scripts/build-probes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double secs(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void print(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    printf("%ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: clockprobe now|all|samples SECS|bench N\n");
        return 2;
    }
    if (!strcmp(argv[1], "now")) {
        print(CLOCK_REALTIME);
    } else if (!strcmp(argv[1], "all")) {
        struct timeval tv;
        print(CLOCK_REALTIME);
        print(CLOCK_REALTIME_COARSE);
        print(CLOCK_TAI);
        gettimeofday(&tv, NULL);
        printf("%ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
        printf("%ld\n", (long)time(NULL));
    } else if (!strcmp(argv[1], "samples") && argc > 2) {
        double end = secs(CLOCK_MONOTONIC) + atof(argv[2]);
        setvbuf(stdout, NULL, _IOLBF, 0);
        while (secs(CLOCK_MONOTONIC) < end) {
            double m1 = secs(CLOCK_MONOTONIC), r = secs(CLOCK_REALTIME), m2 = secs(CLOCK_MONOTONIC);
            printf("%.9f %.9f %.9f\n", m1, r, m2);
            usleep(20000);
        }
    } else if (!strcmp(argv[1], "bench") && argc > 2) {
        long n = atol(argv[2]);
        struct timespec ts, start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (long i = 0; i < n; i++) clock_gettime(CLOCK_REALTIME, &ts);
        clock_gettime(CLOCK_MONOTONIC, &end);
        printf("%.2f\n", ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / n);
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    return 0;
}
