// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// A minimal ENS registry: owner and resolver per node, subnodes created by the parent's owner.
contract EnsRegistry {
    mapping(bytes32 => address) public owner;
    mapping(bytes32 => address) public resolver;

    constructor() {
        owner[bytes32(0)] = msg.sender;
    }

    modifier onlyOwner(bytes32 node) {
        require(owner[node] == msg.sender, "not node owner");
        _;
    }

    function setSubnodeOwner(bytes32 node, bytes32 label, address newOwner) external onlyOwner(node) returns (bytes32 subnode) {
        subnode = keccak256(abi.encodePacked(node, label));
        owner[subnode] = newOwner;
    }

    function setResolver(bytes32 node, address newResolver) external onlyOwner(node) {
        resolver[node] = newResolver;
    }
}

/// Forward (addr) and reverse (name) records, writable by the node's owner in the registry.
contract EnsResolver {
    EnsRegistry public immutable registry;
    mapping(bytes32 => address) private addrs;
    mapping(bytes32 => string) private names;

    constructor(EnsRegistry registry_) {
        registry = registry_;
    }

    modifier onlyOwner(bytes32 node) {
        require(registry.owner(node) == msg.sender, "not node owner");
        _;
    }

    function addr(bytes32 node) external view returns (address) {
        return addrs[node];
    }

    function name(bytes32 node) external view returns (string memory) {
        return names[node];
    }

    function setAddr(bytes32 node, address a) external onlyOwner(node) {
        addrs[node] = a;
    }

    function setName(bytes32 node, string calldata n) external onlyOwner(node) {
        names[node] = n;
    }

    /// ERC-165: addr(bytes32) and name(bytes32); not EIP-2544 wildcard resolution (0x9061b923).
    function supportsInterface(bytes4 id) external pure returns (bool) {
        return id == 0x01ffc9a7 || id == 0x3b3b57de || id == 0x691f3431;
    }
}

/// Owns addr.reverse: anyone may set the name of their own address (a claim the forward record must confirm).
contract ReverseRegistrar {
    bytes32 public constant ADDR_REVERSE_NODE = 0x91d1777781884d03a6757a803996e38de2a42967fb37eeaca72729271025a9e2;
    EnsRegistry public immutable registry;
    EnsResolver public immutable defaultResolver;

    constructor(EnsRegistry registry_, EnsResolver resolver_) {
        registry = registry_;
        defaultResolver = resolver_;
    }

    function setName(string calldata n) external returns (bytes32 node) {
        bytes32 label = hexLabel(msg.sender);
        node = registry.setSubnodeOwner(ADDR_REVERSE_NODE, label, address(this));
        registry.setResolver(node, address(defaultResolver));
        defaultResolver.setName(node, n);
    }

    /// keccak256 of the lowercase hex of an address without 0x: the label ENS uses under addr.reverse.
    function hexLabel(address a) internal pure returns (bytes32) {
        bytes memory s = new bytes(40);
        bytes16 digits = "0123456789abcdef";
        uint160 v = uint160(a);
        for (uint256 i = 40; i > 0; i--) {
            s[i - 1] = digits[v & 0xf];
            v >>= 4;
        }
        return keccak256(s);
    }
}
