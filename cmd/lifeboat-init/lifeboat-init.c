/*
 * lifeboat-init: the tiny init the agent runs shell workloads under, as
 * PID 1 of the workload's PID namespace (docs/ARCHITECTURE.md, "The
 * workload init").
 *
 *	lifeboat-init -- COMMAND [ARG...]
 *
 * The kernel delivers no signal to a PID namespace's init that the init
 * has no handler for (but SIGKILL and SIGSTOP from outside): a shell run
 * as PID 1 ignores the agent's SIGTERM, and a shell with a trap defers it
 * until its foreground command ends, so a stop waited the whole grace and
 * ended in SIGKILL. This init takes the signals, passes them on, reaps
 * every orphan the namespace hands it and exits with the command's status.
 *
 * It is C, static, without a thread or a descriptor of its own: CRIU dumps
 * and restores it with the workload at every checkpoint and move, and it
 * adds one task and 60 KB to the image where a Go init adds 5-8 threads and
 * 0.7 MB (BenchmarkCRIUInitOverhead). The signals wait blocked in
 * sigwaitinfo, so no handler is ever half run when CRIU freezes it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* EXIT_USAGE: the command never ran (bad arguments, not PID 1, exec failed). */
#define EXIT_USAGE 127

/*
 * The signals passed on. The terminating ones go to every process of the
 * namespace but the init (kill(-1) skips its caller), as a terminal's go to
 * its foreground group: the shell and the command it waits for. SIGUSR1 and
 * SIGUSR2 mean what the program says, and kill a process that does not
 * handle them, so they go to the command alone.
 */
static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static int fail(const char *what, const char *why) {
	fprintf(stderr, "lifeboat-init: %s%s%s\n", what, why ? ": " : "", why ? why : "");
	return EXIT_USAGE;
}

/* target is whom a forwarded signal goes to when the command is child. */
static pid_t target(int sig, pid_t child) {
	return sig == SIGUSR1 || sig == SIGUSR2 ? child : -1;
}

/* exit_status is the command's status as a shell reports it: its exit
 * code, or 128+N when signal N ended it. */
static int exit_status(int status) {
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* reap reaps every process that has exited; it returns 1 with *status set
 * once the command was among them. */
static int reap(pid_t child, int *status) {
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return 0;
		if (pid == child) {
			*status = exit_status(st);
			return 1;
		}
	}
}

int main(int argc, char **argv) {
	if (argc < 3 || strcmp(argv[1], "--") != 0 || argv[2][0] == '\0')
		return fail("usage: lifeboat-init -- COMMAND [ARG...]", NULL);
	/* Outside a namespace of its own, kill(-1) would reach every process
	 * of the host the caller may signal. */
	if (getpid() != 1)
		return fail("must run as PID 1 of its own PID namespace", NULL);
	sigset_t set, old;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaddset(&set, forwarded[i]);
	sigaddset(&set, SIGCHLD);
	/* Blocked signals are queued even for a namespace init, and wait for
	 * sigwaitinfo: none is lost between the fork and the loop. */
	if (sigprocmask(SIG_BLOCK, &set, &old) != 0)
		return fail("sigprocmask", strerror(errno));
	pid_t child = fork();
	if (child < 0)
		return fail("fork", strerror(errno));
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[2], argv + 2);
		fprintf(stderr, "lifeboat-init: %s: %s\n", argv[2], strerror(errno));
		_exit(EXIT_USAGE);
	}
	for (;;) {
		int status;
		if (reap(child, &status))
			return status; /* the rest of the namespace dies with its init */
		int sig = sigwaitinfo(&set, NULL);
		if (sig > 0 && sig != SIGCHLD)
			kill(target(sig, child), sig);
	}
}
