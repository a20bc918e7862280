/*
 * Pod sandbox process: holds the pod's namespaces open, reaps orphaned children (it is PID 1 of a
 * pod with a shared PID namespace) and exits cleanly on SIGINT/SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_terminate(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && argv[1][0] == '-' && argv[1][1] == 'v') {
    printf("userservice pause 3.10\n");
    return 0;
  }
  struct sigaction term = {.sa_handler = on_terminate};
  struct sigaction chld = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &term, NULL) < 0 || sigaction(SIGTERM, &term, NULL) < 0 ||
      sigaction(SIGCHLD, &chld, NULL) < 0) {
    return 1;
  }
  for (;;) {
    pause();
  }
}
