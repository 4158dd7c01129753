// SPDX-License-Identifier: GPL-3.0-or-later

// The kernel matrix's Go TLS peer (scripts/kernel-matrix.sh builds it
// static, CGO_ENABLED=0; scripts/matrix/init.sh runs it): crypto/tls with
// HTTP/1.1 spoken by hand (no net/http: a smaller binary, fewer goroutines
// under TCG). One binary, two modes; the guest runs it under two names
// (symlinks gotls-server, gotls-client) so that each end has its own comm.
//
//	tls-go server ADDR CERT KEY   serve until killed; prints "ready" once listening
//	tls-go client ADDR PATH       one GET PATH (Connection: close), prints the
//	                              response; exit 1 unless it is a 200
//	tls-go client ADDR PATH N C   N such GETs, C at a time (one connection
//	                              each), of PATH?q=0 .. PATH?q=N-1; prints
//	                              "PATH?q=K PORT" for each (PORT: the
//	                              client's own, as its socket says it), then
//	                              "ok N"; exit 1 unless all N are 200s with
//	                              the right body
//
// Every response is "HTTP/1.1 200 OK" with the body Body + PATH + "\n".
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

const Body = "osprey-matrix tls hello from go: "

func die(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "tls-go: "+f+"\n", a...)
	os.Exit(1)
}

func serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return
	}
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if l == "\r\n" || l == "\n" {
			break
		}
	}
	body := Body + f[1] + "\n"
	// one Write: headers and body in one TLS record
	c.Write([]byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"+
		"Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)))
}

// get: one GET of path on a new TLS connection to addr, the whole response
func get(addr, path string) ([]byte, error) {
	got, _, err := getPort(addr, path)
	return got, err
}

// getPort: get, and the connection's local port
func getPort(addr, path string) ([]byte, int, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	port := c.LocalAddr().(*net.TCPAddr).Port
	req := "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return nil, port, err
	}
	got, err := io.ReadAll(c)
	return got, port, err
}

// many: n GETs of path, c at a time; exits 1 at the first that fails or
// is not the 200 with its body
func many(addr, path string, n, c int) {
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p := fmt.Sprintf("%s?q=%d", path, i)
				want := Body + p + "\n"
				got, port, err := getPort(addr, p)
				if err != nil {
					die("%v", err)
				}
				out.Lock()
				fmt.Printf("%s %d\n", p, port)
				out.Unlock()
				if !bytes.HasPrefix(got, []byte("HTTP/1.1 200 ")) || !bytes.HasSuffix(got, []byte(want)) {
					die("not a 200 with the body: %q", got)
				}
			}
		}()
	}
	wg.Wait()
}

func main() {
	if len(os.Args) >= 5 && os.Args[1] == "server" {
		cert, err := tls.LoadX509KeyPair(os.Args[3], os.Args[4])
		if err != nil {
			die("%v", err)
		}
		l, err := tls.Listen("tcp", os.Args[2], &tls.Config{Certificates: []tls.Certificate{cert}})
		if err != nil {
			die("%v", err)
		}
		fmt.Println("ready")
		for {
			c, err := l.Accept()
			if err != nil {
				die("%v", err)
			}
			go serve(c)
		}
	}
	if len(os.Args) == 4 && os.Args[1] == "client" {
		got, err := get(os.Args[2], os.Args[3])
		if err != nil {
			die("%v", err)
		}
		os.Stdout.Write(got)
		if !bytes.HasPrefix(got, []byte("HTTP/1.1 200 ")) {
			die("not a 200")
		}
		return
	}
	if len(os.Args) == 6 && os.Args[1] == "client" {
		n, err1 := strconv.Atoi(os.Args[4])
		c, err2 := strconv.Atoi(os.Args[5])
		if err1 != nil || err2 != nil || n < 1 || c < 1 {
			die("N and C must be positive numbers")
		}
		many(os.Args[2], os.Args[3], n, c)
		fmt.Printf("ok %d\n", n)
		return
	}
	die("usage: tls-go server ADDR CERT KEY | client ADDR PATH [N C]")
}
