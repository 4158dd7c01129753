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
	"strings"
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
		c, err := tls.Dial("tcp", os.Args[2], &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			die("%v", err)
		}
		req := "GET " + os.Args[3] + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
		if _, err := c.Write([]byte(req)); err != nil {
			die("%v", err)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			die("%v", err)
		}
		c.Close()
		os.Stdout.Write(got)
		if !bytes.HasPrefix(got, []byte("HTTP/1.1 200 ")) {
			die("not a 200")
		}
		return
	}
	die("usage: tls-go server ADDR CERT KEY | client ADDR PATH")
}
